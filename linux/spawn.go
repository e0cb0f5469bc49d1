package linux

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/railcar-oci/railcar/linux/cgroup"
	"github.com/railcar-oci/railcar/linux/initproc"
	"github.com/railcar-oci/railcar/linux/msg"
)

// nsNames maps the spec's namespace types to nsenter's (and /proc/PID/ns's).
var nsNames = map[specs.LinuxNamespaceType]string{
	specs.UserNamespace:    "user",
	specs.MountNamespace:   "mnt",
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// execMonitor is the Monitor of a caller that does not own wait4.
type execMonitor struct{}

func (execMonitor) Start(cmd *exec.Cmd) (chan int, error) { return nil, cmd.Start() }

func (execMonitor) Wait(cmd *exec.Cmd, _ chan int) (int, error) {
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// spawnReq describes one re-execution of this binary as an init.
type spawnReq struct {
	argv0     string
	dir       string // working directory: the bundle, for relative bind sources
	bootstrap string
	stdio     Stdio
	extra     []*os.File // preserved fds, then the exec fifo if any
	cgroup    cgroup.Manager
	// userns writes the id mappings of the child (new user namespace).
	userns func(pid int) error
	// oomScoreAdj, if set, is written to the process's oom_score_adj.
	oomScoreAdj *int
}

// spawn starts the init and runs the nsenter part of the protocol (see
// package nsenter). It returns the pid of the process that will run the
// workload, a child of this process, and the connection to it.
func (e *Engine) spawn(r *spawnReq) (int, *msg.Conn, error) {
	parent, child, err := msg.Pair()
	if err != nil {
		return 0, nil, err
	}
	defer child.Close()
	conn := msg.New(parent)
	self, err := selfExe()
	if err != nil {
		conn.Close()
		return 0, nil, err
	}
	cmd := &exec.Cmd{
		Path:       self,
		Args:       []string{r.argv0},
		Env:        []string{initproc.EnvInit + "=" + strconv.Itoa(3+len(r.extra))},
		Dir:        r.dir,
		ExtraFiles: append(append([]*os.File{}, r.extra...), child),
		SysProcAttr: &syscall.SysProcAttr{
			// Dies with us until the workload is set up.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	r.stdio.attach(cmd)
	ch, err := e.monitor.Start(cmd)
	if err != nil {
		conn.Close()
		return 0, nil, fmt.Errorf("start init: %w", err)
	}
	child.Close()
	pid, err := e.bootstrap(cmd, conn, r)
	if err == nil && r.oomScoreAdj != nil {
		// From here, with the host's privileges (runc's nsexec writes it
		// before joining the namespaces): a process in a user namespace
		// may not open its own /proc/self/oom_score_adj for writing. On
		// failure the process tries itself and reports why it cannot.
		_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(*r.oomScoreAdj)), 0)
	}
	if code, werr := e.monitor.Wait(cmd, ch); err == nil && (werr != nil || code != 0) {
		err = fmt.Errorf("init setup exited with %d: %v", code, werr)
	}
	if err != nil {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		conn.Close()
		return 0, nil, err
	}
	return pid, conn, nil
}

func (e *Engine) bootstrap(cmd *exec.Cmd, conn *msg.Conn, r *spawnReq) (int, error) {
	if r.cgroup != nil {
		if err := r.cgroup.Apply(cmd.Process.Pid); err != nil {
			return 0, err
		}
	}
	if err := conn.SendRaw([]byte(r.bootstrap)); err != nil {
		return 0, fmt.Errorf("send bootstrap: %w", err)
	}
	for {
		b, _, err := conn.RecvRaw()
		if err != nil {
			return 0, fmt.Errorf("init setup: %w", err)
		}
		line := string(b)
		switch {
		case line == "userns":
			if r.userns == nil {
				return 0, fmt.Errorf("init asked for id mappings nobody gave")
			}
			if err := r.userns(cmd.Process.Pid); err != nil {
				return 0, err
			}
			if err := conn.SendRaw([]byte("mapped")); err != nil {
				return 0, err
			}
		case strings.HasPrefix(line, "pid "):
			pid, err := strconv.Atoi(line[4:])
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("init setup: bad pid %q", line)
			}
			return pid, nil
		case strings.HasPrefix(line, "error "):
			return 0, fmt.Errorf("%s", line[6:])
		default:
			return 0, fmt.Errorf("init setup: unexpected %q", line)
		}
	}
}

// writeMappings writes uid_map and gid_map of pid.
func writeMappings(pid int, uids, gids []specs.LinuxIDMapping) error {
	for _, m := range []struct {
		file string
		ids  []specs.LinuxIDMapping
	}{{"uid_map", uids}, {"gid_map", gids}} {
		var b strings.Builder
		for _, id := range m.ids {
			fmt.Fprintf(&b, "%d %d %d\n", id.ContainerID, id.HostID, id.Size)
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, m.file), []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write %s: %w", m.file, err)
		}
	}
	return nil
}

// attach makes s the stdio of cmd. A nil *os.File is not a nil io.Reader:
// os/exec would leave the fd closed, and the init's Go runtime would then
// open /dev/null itself as it starts (runtime.checkfds), racing the device
// cgroup rules being written, and for exec inside the container's mount
// namespace, where the container decides what /dev/null is. Left nil,
// os/exec gives the host's /dev/null, as runc's inits get.
func (s Stdio) attach(cmd *exec.Cmd) {
	if s.Stdin != nil {
		cmd.Stdin = s.Stdin
	}
	if s.Stdout != nil {
		cmd.Stdout = s.Stdout
	}
	if s.Stderr != nil {
		cmd.Stderr = s.Stderr
	}
}
