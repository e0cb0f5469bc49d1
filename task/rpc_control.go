package task

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/console"
	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/railcar-oci/railcar/linux"
)

// Kill signals the init (every process of the container with All) or an
// exec.
func (s *Service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*emptyResp, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	sig := syscall.Signal(r.Signal)
	if p != c.init {
		if err := p.signal(sig); err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		return empty, nil
	}
	if st := p.status(); st == statusStopped || st == statusDeleted {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "container %s: process already finished", c.id)
	}
	if err := c.c.Signal(sig, r.All); err != nil {
		if c.c.Status() == linux.Stopped {
			// Exited, not yet reaped: what containerd ignores on kill.
			return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "container %s: process already finished", c.id)
		}
		return nil, errgrpc.ToGRPC(fmt.Errorf("signal container %s: %w", c.id, err))
	}
	return empty, nil
}

// Pause freezes the container.
func (s *Service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*emptyResp, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	p := c.init
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != statusRunning {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is %s, not running", c.id, p.st)
	}
	if err := c.c.Pause(); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("pause container %s: %w", c.id, err))
	}
	p.setStatus(statusPaused)
	s.send(&eventstypes.TaskPaused{ContainerID: c.id})
	return empty, nil
}

// Resume thaws the container.
func (s *Service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*emptyResp, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	p := c.init
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != statusPaused {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is %s, not paused", c.id, p.st)
	}
	if err := c.c.Resume(); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("resume container %s: %w", c.id, err))
	}
	p.setStatus(statusRunning)
	s.send(&eventstypes.TaskResumed{ContainerID: c.id})
	return empty, nil
}

// Pids lists the container's processes; execs carry their exec id.
func (s *Service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	pids, err := c.c.Processes()
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("list processes of %s: %w", c.id, err))
	}
	execs := make(map[int]string)
	for _, e := range c.execList() {
		if pid := e.Pid(); pid != 0 {
			execs[pid] = e.id
		}
	}
	var ps []*tasktypes.ProcessInfo
	for _, pid := range pids {
		info := &tasktypes.ProcessInfo{Pid: uint32(pid)}
		if id, ok := execs[pid]; ok {
			a, err := typeurl.MarshalAnyToProto(&options.ProcessDetails{ExecID: id})
			if err != nil {
				return nil, errgrpc.ToGRPC(fmt.Errorf("marshal process %d details: %w", pid, err))
			}
			info.Info = a
		}
		ps = append(ps, info)
	}
	return &taskAPI.PidsResponse{Processes: ps}, nil
}

// Update changes the container's resources.
func (s *Service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*emptyResp, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "decode resources: %v", err)
	}
	if err := c.c.Update(&res); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("update container %s: %w", c.id, err))
	}
	return empty, nil
}

// Stats returns the cgroup metrics (cgroup v1 or v2 types of
// containerd/cgroups, as containerd's runc shim sends them).
func (s *Service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	cg := c.c.Cgroup()
	if cg == nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "container %s has no cgroup", c.id)
	}
	m, err := cg.Metrics()
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("metrics of %s: %w", c.id, err))
	}
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("marshal metrics of %s: %w", c.id, err))
	}
	return &taskAPI.StatsResponse{Stats: a}, nil
}

// ResizePty resizes a process's terminal.
func (s *Service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*emptyResp, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if err := p.Resize(console.WinSize{Width: uint16(r.Width), Height: uint16(r.Height)}); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return empty, nil
}

// CloseIO closes a process's stdin.
func (s *Service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*emptyResp, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Stdin {
		if err := p.CloseIO(); err != nil {
			return nil, errgrpc.ToGRPC(fmt.Errorf("close stdin: %w", err))
		}
	}
	return empty, nil
}

// Checkpoint dumps the container with criu into r.Path, with containerd's
// runc CheckpointOptions (as containerd's runc shim). Without Exit the
// container runs on; with it criu stops it and its exit is reported as
// any other.
func (s *Service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*emptyResp, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	opts := &options.CheckpointOptions{}
	if r.Options != nil && r.Options.GetTypeUrl() != "" {
		v, err := typeurl.UnmarshalAny(r.Options)
		if err != nil {
			return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "decode checkpoint options: %v", err)
		}
		o, ok := v.(*options.CheckpointOptions)
		if !ok {
			return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "checkpoint options of type %s", r.Options.GetTypeUrl())
		}
		opts = o
	}
	if st := c.init.status(); st != statusRunning && st != statusPaused {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is %s, not running", c.id, st)
	}
	image := r.Path
	if image == "" {
		image = opts.ImagePath
	}
	if image == "" {
		return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "checkpoint of %s: no image path", c.id)
	}
	// criu's log stays in the bundle when the dump fails, for the error
	// to name it.
	work, ownWork := opts.WorkPath, false
	if work == "" {
		work, ownWork = filepath.Join(c.bundle, "criu-work"), true
	}
	err = c.c.Checkpoint(ctx, linux.CriuOpts{
		ImagePath:         image,
		WorkPath:          work,
		ParentPath:        opts.ParentPath,
		LeaveRunning:      !opts.Exit,
		TCPEstablished:    opts.OpenTcp,
		ExtUnixSk:         opts.ExternalUnixSockets,
		ShellJob:          opts.Terminal,
		FileLocks:         opts.FileLocks,
		EmptyNs:           opts.EmptyNamespaces,
		ManageCgroupsMode: opts.CgroupsMode,
	})
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("checkpoint container %s: %w", c.id, err))
	}
	if ownWork {
		_ = os.RemoveAll(work)
	}
	return empty, nil
}

// restore is Create from a checkpoint (r.Checkpoint, as containerd's
// restore flow passes it): criu restores the init at once, with the
// request's stdio; criu's log stays in the bundle when it fails.
func (s *Service) restore(ctx context.Context, eng *linux.Engine, r *taskAPI.CreateTaskRequest, o linux.CreateOpts) (*linux.Container, error) {
	work := filepath.Join(r.Bundle, "criu-work")
	c, err := eng.Restore(ctx, r.ID, linux.RestoreOpts{
		Bundle:    o.Bundle,
		Stdio:     o.Stdio,
		OnConsole: o.OnConsole,
		Criu:      linux.CriuOpts{ImagePath: r.Checkpoint, WorkPath: work},
	})
	if err != nil {
		return nil, fmt.Errorf("restore from %s: %w", r.Checkpoint, err)
	}
	_ = os.RemoveAll(work)
	return c, nil
}
