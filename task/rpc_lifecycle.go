package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/railcar-oci/railcar/linux"
)

type emptyResp = emptypb.Empty

var empty = &emptypb.Empty{}

// createConfig is the shim config for one Create: the runtime's ConfigPath
// when the request carries runtimeoptions, else the shim's own.
func (s *Service) createConfig(opts *anypb.Any) (Config, error) {
	if opts == nil || opts.GetTypeUrl() == "" {
		return s.cfg, nil
	}
	if !strings.HasSuffix(opts.GetTypeUrl(), "runtimeoptions.v1.Options") {
		log.G(s.ctx).WithField("type", opts.GetTypeUrl()).Debug("ignoring runtime options of another runtime")
		return s.cfg, nil
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return Config{}, fmt.Errorf("decode runtime options: %w", err)
	}
	ro, ok := v.(*runtimeoptions.Options)
	if !ok || ro.GetConfigPath() == "" {
		return s.cfg, nil
	}
	return LoadConfig(ro.GetConfigPath())
}

// keepConsole returns an OnConsole that keeps a duplicate of the pty
// master: the engine closes its own once the callback returns.
func keepConsole(dst **os.File) func(*os.File) error {
	return func(m *os.File) error {
		fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("keep pty master: %w", err)
		}
		*dst = os.NewFile(uintptr(fd), m.Name())
		return nil
	}
}

// Create creates the container and its (not yet started) init.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *taskAPI.CreateTaskResponse, retErr error) {
	cfg, err := s.createConfig(r.Options)
	if err != nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
	}
	s.mu.Lock()
	_, exists := s.containers[r.ID]
	s.creating++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.creating--
		s.mu.Unlock()
	}()
	if exists {
		return nil, errgrpc.ToGRPCf(errdefs.ErrAlreadyExists, "container %s", r.ID)
	}
	eng, err := s.engine(cfg)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	rootfs, err := mountRootfs(r.Bundle, mount.FromProto(r.Rootfs))
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	init := newProcess("", Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}, nil)
	defer func() {
		if retErr != nil {
			init.closeIO()
			_ = unmountRootfs(ctx, rootfs)
		}
	}()
	if err := init.openIO(ctx, s, s.ns, r.ID); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	var master *os.File
	opts := linux.CreateOpts{
		Bundle:    r.Bundle,
		Stdio:     init.childStdio(),
		OnConsole: keepConsole(&master),
	}

	s.lifecycle.mu.Lock()
	handleStarted, cleanup := s.preStart(nil)
	s.lifecycle.mu.Unlock()
	defer cleanup()

	var lc *linux.Container
	if r.Checkpoint != "" {
		// Restored at once, running: Start only reports it.
		lc, err = s.restore(ctx, eng, r, opts)
	} else {
		lc, err = eng.Create(ctx, r.ID, opts)
	}
	if err != nil {
		if master != nil {
			master.Close()
		}
		return nil, errgrpc.ToGRPC(fmt.Errorf("create container %s: %w", r.ID, err))
	}
	defer func() {
		if retErr != nil {
			_ = lc.Delete(context.WithoutCancel(ctx), true)
		}
	}()
	if err := init.afterStart(ctx, s, master, r.ID); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pid := lc.Pid()
	init.mu.Lock()
	init.pid = pid
	init.mu.Unlock()

	c := &container{
		id:       r.ID,
		bundle:   r.Bundle,
		c:        lc,
		init:     init,
		ownPidNS: ownPidNamespace(lc.Spec()),
		rootfs:   rootfs,
		execs:    make(map[string]*process),
		restored: r.Checkpoint != "",
	}
	if err := writeBundleState(r.Bundle, cfg, pid, rootfs); err != nil {
		log.G(ctx).WithError(err).Warn("record shim state in bundle")
	}
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()

	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID,
		Bundle:      r.Bundle,
		Rootfs:      r.Rootfs,
		IO:          &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Checkpoint:  r.Checkpoint,
		Pid:         uint32(pid),
	})
	// Watch for OOM kills from now on: the init sits in its cgroup already
	// and the workload may hit the limit right after start.
	s.watchOOM(c)
	handleStarted(c, init, pid)
	return &taskAPI.CreateTaskResponse{Pid: uint32(pid)}, nil
}

func (s *Service) watchOOM(c *container) {
	cg := c.c.Cgroup()
	if cg == nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ch, err := cg.OOM(ctx)
	if err != nil {
		cancel()
		log.G(s.ctx).WithError(err).WithField("id", c.id).Warn("watch OOM events")
		return
	}
	c.stopOOM = cancel
	go func() {
		for range ch {
			s.send(&eventstypes.TaskOOM{ContainerID: c.id})
		}
	}()
}

// Start starts the init (runs the workload) or an exec.
func (s *Service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if p.status() != statusCreated {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "process %s of container %s is %s, not created", p.eventID(c), c.id, p.status())
	}
	if p == c.init {
		// What setting the container up allocated is garbage now: hand
		// it back to the kernel at once rather than at the next periodic
		// trim, so a shim per container stays small. Not per exec: a
		// forced collection on every exec probe costs more CPU than the
		// memory is worth; the periodic trim takes that.
		defer func() { go debug.FreeOSMemory() }()
		return s.startInit(ctx, c)
	}
	return s.startExec(ctx, c, p)
}

func (s *Service) startInit(ctx context.Context, c *container) (*taskAPI.StartResponse, error) {
	s.lifecycle.mu.Lock()
	handleStarted, cleanup := s.preStart(c)
	s.lifecycle.mu.Unlock()
	defer cleanup()

	pid := c.init.Pid()
	// A restored container runs since Create: Start only reports it.
	if !c.restored {
		if err := c.c.Start(ctx); err != nil {
			handleStarted(c, c.init, pid)
			return nil, errgrpc.ToGRPC(fmt.Errorf("start container %s: %w", c.id, err))
		}
	}
	c.init.started(pid)
	s.send(&eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(pid)})
	handleStarted(c, c.init, pid)
	return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
}

func (s *Service) startExec(ctx context.Context, c *container, p *process) (_ *taskAPI.StartResponse, retErr error) {
	l := &s.lifecycle
	l.mu.Lock()
	if _, exited := l.initExited[c]; exited {
		l.mu.Unlock()
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s init process is not running", c.id)
	}
	l.runningExecs[c]++
	handleStarted, cleanup := s.preStart(nil)
	l.mu.Unlock()
	defer cleanup()

	fail := func(err error) (*taskAPI.StartResponse, error) {
		s.execDone(c)
		p.closeIO()
		// Wait callers learn that the exec is over.
		p.setExited(255, timeNow())
		handleStarted(c, p, 0)
		return nil, errgrpc.ToGRPC(err)
	}
	if err := p.openIO(ctx, s, s.ns, p.id); err != nil {
		return fail(err)
	}
	var master *os.File
	pid, err := c.c.Exec(ctx, linux.ExecOpts{
		Process:   p.spec,
		Stdio:     p.childStdio(),
		OnConsole: keepConsole(&master),
	})
	if err != nil {
		if master != nil {
			master.Close()
		}
		return fail(fmt.Errorf("exec %s in container %s: %w", p.id, c.id, err))
	}
	p.started(pid)
	if err := p.afterStart(ctx, s, master, p.id); err != nil {
		log.G(ctx).WithError(err).WithField("exec", p.id).Error("exec stdio")
	}
	s.send(&eventstypes.TaskExecStarted{ContainerID: c.id, ExecID: p.id, Pid: uint32(pid)})
	handleStarted(c, p, pid)
	return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
}

// Exec adds a process to a container; Start runs it.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptyResp, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	if st := c.init.status(); st != statusRunning && st != statusPaused && st != statusCreated {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is %s", c.id, st)
	}
	var spec specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &spec); err != nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "decode exec process spec: %v", err)
	}
	c.mu.Lock()
	if _, ok := c.execs[r.ExecID]; ok {
		c.mu.Unlock()
		return nil, errgrpc.ToGRPCf(errdefs.ErrAlreadyExists, "exec %s of container %s", r.ExecID, c.id)
	}
	c.execs[r.ExecID] = newProcess(r.ExecID, Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}, &spec)
	c.mu.Unlock()
	s.send(&eventstypes.TaskExecAdded{ContainerID: c.id, ExecID: r.ExecID})
	return empty, nil
}

// Delete deletes an exec, or the init and with it the container.
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if p == c.init {
		c.delMu.Lock()
		defer c.delMu.Unlock()
		if c.deleted != nil {
			return c.deleted, nil
		}
	}
	st := p.status()
	if st == statusRunning || st == statusPaused {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "cannot delete %s process %s of container %s", st, p.eventID(c), c.id)
	}
	if st == statusDeleted {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "process %s of container %s", p.eventID(c), c.id)
	}
	if p != c.init {
		p.markDeleted()
		c.mu.Lock()
		delete(c.execs, p.id)
		c.mu.Unlock()
		p.closeIO()
		status, at := p.exit()
		return &taskAPI.DeleteResponse{Pid: uint32(p.Pid()), ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)}, nil
	}
	if err := s.deleteInit(ctx, c, st); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	status, at := p.exit()
	pid := p.Pid()
	s.send(&eventstypes.TaskDelete{ContainerID: c.id, Pid: uint32(pid), ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)})
	c.deleted = &taskAPI.DeleteResponse{Pid: uint32(pid), ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)}
	s.exitWhenIdle(idleExit)
	return c.deleted, nil
}

func (s *Service) deleteInit(ctx context.Context, c *container, st status) error {
	if st == statusCreated {
		// The init never ran: its exit is no event.
		c.init.markDeleted()
	}
	if err := c.c.Delete(ctx, st == statusCreated); err != nil && !errors.Is(err, linux.ErrNotExist) {
		return fmt.Errorf("delete container %s: %w", c.id, err)
	}
	if st == statusStopped {
		c.init.markDeleted()
	}
	if c.stopOOM != nil {
		c.stopOOM()
	}
	c.init.closeIO()
	for _, e := range c.execList() {
		e.closeIO()
	}
	err := unmountRootfs(ctx, c.rootfs)
	s.mu.Lock()
	delete(s.containers, c.id)
	s.mu.Unlock()
	s.lifecycle.mu.Lock()
	delete(s.lifecycle.initExited, c)
	s.lifecycle.mu.Unlock()
	return err
}

// Wait blocks until the process exits and returns its exit status.
func (s *Service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if err := p.Wait(ctx); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	status, at := p.exit()
	return &taskAPI.WaitResponse{ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)}, nil
}

// State returns a process's state.
func (s *Service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	status, at := p.exit()
	return &taskAPI.StateResponse{
		ID:         p.eventID(c),
		Bundle:     c.bundle,
		Pid:        uint32(p.Pid()),
		Status:     p.status().proto(),
		Stdin:      p.stdio.Stdin,
		Stdout:     p.stdio.Stdout,
		Stderr:     p.stdio.Stderr,
		Terminal:   p.stdio.Terminal,
		ExitStatus: uint32(status),
		ExitedAt:   protobuf.ToTimestamp(at),
		ExecID:     r.ExecID,
	}, nil
}
