package linux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux/cgroup"
	"github.com/railcar-oci/railcar/linux/hooks"
	"github.com/railcar-oci/railcar/linux/initproc"
	"github.com/railcar-oci/railcar/linux/msg"
	"github.com/railcar-oci/railcar/linux/process"
)

// ErrNotExist is wrapped by errors about containers that do not exist.
var ErrNotExist = errors.New("container does not exist")

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

// Engine is a state root holding containers.
type Engine struct {
	cfg     Config
	monitor Monitor
}

// New returns an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Root = root
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	m := cfg.Monitor
	if m == nil {
		m = execMonitor{}
	}
	return &Engine{cfg: cfg, monitor: m}, nil
}

// Root is the engine's state directory.
func (e *Engine) Root() string { return e.cfg.Root }

// Container is one container of an engine.
type Container struct {
	e   *Engine
	dir string
	s   *saved
	cg  cgroup.Manager
}

// loadBundle checks id and reads what Create and Restore start from: the
// bundle's absolute path, the spec (given, or the bundle's config.json)
// and the rootfs it names.
func loadBundle(id, bundleDir string, spec *specs.Spec) (bundle, rootfs string, _ *specs.Spec, err error) {
	if !validID.MatchString(id) || id == "." || id == ".." {
		return "", "", nil, fmt.Errorf("invalid container id %q", id)
	}
	if bundle, err = filepath.Abs(bundleDir); err != nil {
		return "", "", nil, err
	}
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return "", "", nil, err
		}
	}
	if rootfs, err = Validate(spec, bundle); err != nil {
		return "", "", nil, err
	}
	return bundle, rootfs, spec, nil
}

// newContainer makes the state directory of a new container id and its
// record; the caller destroys it if setting the container up fails.
func (e *Engine) newContainer(id, bundle, rootfs string, spec *specs.Spec) (*Container, error) {
	dir := filepath.Join(e.cfg.Root, id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q already exists", id)
		}
		return nil, fmt.Errorf("state dir: %w", err)
	}
	owner := ""
	if u, err := user.Current(); err == nil {
		owner = u.Username
	}
	return &Container{e: e, dir: dir, s: &saved{ID: id, Bundle: bundle, Rootfs: rootfs,
		Created: time.Now().UTC(), Owner: owner, Systemd: e.cfg.SystemdCgroup, Spec: spec}}, nil
}

// Create creates container id from o (runc create): namespaces, cgroup,
// rootfs, prestart/createRuntime/createContainer hooks. The workload does
// not run until Start.
func (e *Engine) Create(ctx context.Context, id string, o CreateOpts) (_ *Container, err error) {
	bundle, rootfs, spec, err := loadBundle(id, o.Bundle, o.Spec)
	if err != nil {
		return nil, err
	}
	c, err := e.newContainer(id, bundle, rootfs, spec)
	if err != nil {
		return nil, err
	}
	dir := c.dir
	defer func() {
		if err != nil {
			c.destroy()
		}
	}()
	if c.cg, err = cgroup.New(id, spec.Linux.CgroupsPath, e.cfg.SystemdCgroup); err != nil {
		return nil, err
	}
	fifo := filepath.Join(dir, fifoFile)
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	// Not subject to the umask: the workload's user opens it for writing.
	if err := os.Chmod(fifo, 0o622); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	if uid, gid := rootIDs(spec); uid != 0 || gid != 0 {
		if err := os.Chown(fifo, uid, gid); err != nil {
			return nil, err
		}
	}
	ff, err := os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	defer ff.Close()

	argv0 := "railcar-init"
	initMode := e.cfg.InitMode
	if v, ok := spec.Annotations[InitAnnotation]; ok {
		initMode = v == "true" || v == "1"
	}
	if initMode {
		argv0 = "rc-init"
	}
	extra := append(append([]*os.File{}, o.ExtraFiles...), ff)
	pid, conn, err := e.spawn(&spawnReq{
		argv0:     argv0,
		dir:       bundle,
		bootstrap: bootstrapNew(spec),
		stdio:     o.Stdio,
		extra:     extra,
		cgroup:    c.cg,
		userns: func(pid int) error {
			return writeMappings(pid, spec.Linux.UIDMappings, spec.Linux.GIDMappings)
		},
		oomScoreAdj: spec.Process.OOMScoreAdj,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c.s.Pid = pid
	if c.s.Start, _, err = pidStart(pid); err != nil {
		return nil, fmt.Errorf("init vanished: %w", err)
	}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	if err := checkJoinedMappings(pid, spec); err != nil {
		return nil, err
	}
	res := specs.LinuxResources{}
	if spec.Linux.Resources != nil {
		res = *spec.Linux.Resources
	}
	res.Devices = deviceRules(spec)
	if err := c.cg.Set(&res); err != nil {
		return nil, err
	}
	cfg := &initproc.Config{ID: id, Bundle: bundle, Rootfs: rootfs, Spec: spec, Process: spec.Process,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, InitMode: initMode,
		ExtraFiles: len(o.ExtraFiles), FifoFD: 3 + len(o.ExtraFiles)}
	usernsPid := 0
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace && ns.Path == "" {
			usernsPid = pid
		}
	}
	trees, err := e.idmappedMounts(spec, bundle, usernsPid)
	if err != nil {
		return nil, err
	}
	defer closeAll(trees)
	var treeFiles []*os.File
	for i, f := range trees {
		cfg.IDMapped = append(cfg.IDMapped, i)
		treeFiles = append(treeFiles, f)
	}
	if err := conn.Send(msg.KindConfig, cfg, treeFiles...); err != nil {
		return nil, initDied(pid, fmt.Errorf("send config: %w", err))
	}
	if err := c.converse(conn, spec.Process.Terminal, o.ConsoleSocket, o.OnConsole, func() error {
		return c.createHooks()
	}); err != nil {
		return nil, initDied(pid, err)
	}
	if err := c.s.write(dir); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// converse answers the init until it has applied the process attributes.
func (c *Container) converse(conn *msg.Conn, terminal bool, socket string, onConsole func(*os.File) error, ready func() error) error {
	for {
		m, files, err := conn.Recv()
		if err != nil {
			if err == io.EOF {
				return errInitExited
			}
			return err
		}
		switch m.Kind {
		case msg.KindConsole:
			if len(files) != 1 {
				return errors.New("init sent no console")
			}
			err := sendConsole(files[0], socket, onConsole)
			files[0].Close()
			if err != nil {
				return err
			}
		case msg.KindReady:
			if err := ready(); err != nil {
				return err
			}
			if err := conn.Send(msg.KindContinue, nil); err != nil {
				return err
			}
		case msg.KindSeccomp:
			if len(files) != 1 {
				return errors.New("init sent no seccomp listener")
			}
			err := c.sendListener(files[0])
			files[0].Close()
			if err != nil {
				return err
			}
		case msg.KindApplied:
			return nil
		default:
			return fmt.Errorf("unexpected %q from init", m.Kind)
		}
	}
}

func sendConsole(master *os.File, socket string, onConsole func(*os.File) error) error {
	if onConsole != nil {
		return onConsole(master)
	}
	if socket == "" {
		return errors.New("a terminal was requested but no console socket was given")
	}
	return sendFd(socket, master, nil)
}

// sendFd connects to a unix socket and sends f with data as its payload.
func sendFd(socket string, f *os.File, data []byte) error {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return errors.New("console socket is not a unix socket")
	}
	if data == nil {
		data = []byte(f.Name())
	}
	_, _, err = uc.WriteMsgUnix(data, unix.UnixRights(int(f.Fd())), nil)
	return err
}

// sendListener hands a seccomp notify fd to the spec's listener, with the
// container's state as runc does.
func (c *Container) sendListener(f *os.File) error {
	sc := c.s.Spec.Linux.Seccomp
	if sc == nil || sc.ListenerPath == "" {
		return errors.New("seccomp notify needs linux.seccomp.listenerPath")
	}
	st := specs.ContainerProcessState{Version: specs.Version, Fds: []string{specs.SeccompFdName},
		Pid: c.s.Pid, Metadata: sc.ListenerMetadata, State: *c.ociState(specs.StateCreating)}
	b, err := jsonMarshal(st)
	if err != nil {
		return err
	}
	return sendFd(sc.ListenerPath, f, b)
}

func (c *Container) ociState(status specs.ContainerState) *specs.State {
	return &specs.State{Version: specs.Version, ID: c.s.ID, Status: status, Pid: c.s.Pid,
		Bundle: c.s.Bundle, Annotations: c.s.Spec.Annotations}
}

func (c *Container) createHooks() error {
	h := c.s.Spec.Hooks
	if h == nil {
		return nil
	}
	for _, hs := range []struct {
		name   string
		list   []specs.Hook
		status specs.ContainerState
	}{
		// prestart sees "created", as under crun and as the runtime-tools
		// suite (hooks_stdin) expects; the hooks of the newer kinds see
		// the container still "creating", as runc shows them.
		{"prestart", h.Prestart, specs.StateCreated}, //nolint:staticcheck // prestart is deprecated, still honoured
		{"createRuntime", h.CreateRuntime, specs.StateCreating},
		{"createContainer", h.CreateContainer, specs.StateCreating},
	} {
		if err := hooks.Run(hs.list, c.ociState(hs.status), c.e.monitor); err != nil {
			return fmt.Errorf("%s hook: %w", hs.name, err)
		}
	}
	return nil
}

// Load returns an existing container.
func (e *Engine) Load(id string) (*Container, error) {
	if !validID.MatchString(id) || id == "." || id == ".." {
		return nil, fmt.Errorf("invalid container id %q", id)
	}
	dir := filepath.Join(e.cfg.Root, id)
	s, err := readSaved(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, err
	}
	cg, err := cgroup.Load(id, s.Spec.Linux.CgroupsPath, s.Systemd)
	if err != nil {
		return nil, err
	}
	return &Container{e: e, dir: dir, s: s, cg: cg}, nil
}

// List returns the state of every container in the root.
func (e *Engine) List() ([]State, error) {
	ents, err := os.ReadDir(e.cfg.Root)
	if err != nil {
		return nil, err
	}
	var out []State
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		c, err := e.Load(ent.Name())
		if err != nil {
			continue
		}
		st, err := c.State()
		if err != nil {
			continue
		}
		out = append(out, *st)
	}
	return out, nil
}

// ID returns the container's id.
func (c *Container) ID() string { return c.s.ID }

// Pid is the init's host pid.
func (c *Container) Pid() int { return c.s.Pid }

// Spec is the container's config.
func (c *Container) Spec() *specs.Spec { return c.s.Spec }

// Bundle is the container's bundle directory.
func (c *Container) Bundle() string { return c.s.Bundle }

// Cgroup returns the container's cgroup manager (stats, metrics, OOM).
func (c *Container) Cgroup() cgroup.Manager { return c.cg }

// Status derives the container's status from the kernel's view.
func (c *Container) Status() Status {
	if !c.s.alive() {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoFile)); err == nil {
		return Created
	}
	if frozen, err := c.cg.Frozen(); err == nil && frozen {
		return Paused
	}
	return Running
}

// State returns the current OCI state.
func (c *Container) State() (*State, error) {
	st := c.Status()
	pid := c.s.Pid
	if st == Stopped {
		pid = 0
	}
	return &State{OCIVersion: specs.Version, ID: c.s.ID, Pid: pid, Status: st, Bundle: c.s.Bundle,
		Rootfs: c.s.Rootfs, Created: c.s.Created, Owner: c.s.Owner, Annotations: c.s.Spec.Annotations}, nil
}

// Start runs the workload of a created container (runc start) and the
// poststart hooks.
func (c *Container) Start(ctx context.Context) error {
	switch st := c.Status(); st {
	case Created:
	case Stopped:
		return errors.New("cannot start a container that has stopped")
	default:
		return fmt.Errorf("cannot start an already %s container", st)
	}
	path := filepath.Join(c.dir, fifoFile)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 50)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if n > 0 {
			var b [1]byte
			if r, _ := unix.Read(fd, b[:]); r == 1 {
				break
			}
		}
		if !c.s.alive() {
			return errors.New("container init exited before start")
		}
	}
	os.Remove(path)
	// The init keeps the fifo open until it execs the workload (after the
	// startContainer hooks): EOF means the workload runs (and may already
	// have exited), unless the init wrote why it failed ("E" + message).
	var failure []byte
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		var b [512]byte
		r, err := unix.Read(fd, b[:])
		if r == 0 && err == nil {
			break
		}
		if r > 0 && len(failure) < 4096 {
			failure = append(failure, b[:r]...)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if len(failure) > 0 {
		return fmt.Errorf("container init: %s", strings.TrimPrefix(string(failure), "E"))
	}
	if p := c.s.Spec.Process; p != nil && p.ExecCPUAffinity != nil && p.ExecCPUAffinity.Final != "" {
		if err := process.FinalCPUAffinity(c.s.Pid, p); err != nil {
			return err
		}
	}
	if h := c.s.Spec.Hooks; h != nil {
		// A failing poststart hook is a warning: the container runs on.
		if err := hooks.Run(h.Poststart, c.ociState(specs.StateRunning), c.e.monitor); err != nil {
			fmt.Fprintf(os.Stderr, "railcar: warning: poststart hook: %v\n", err)
		}
	}
	return nil
}

// Signal sends sig to the init, or to every process in the container when
// all is set.
func (c *Container) Signal(sig syscall.Signal, all bool) error {
	if all {
		return c.signalAll(sig)
	}
	fd, err := c.s.pidfd()
	if err != nil {
		return errors.New("container not running")
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal init: %w", err)
	}
	return nil
}

func (c *Container) signalAll(sig syscall.Signal) error {
	if sig == unix.SIGKILL {
		// Freeze first so nothing forks away from the kill.
		if err := c.cg.Freeze(); err == nil {
			defer c.cg.Thaw()
		}
	}
	pids, err := c.cg.Pids()
	if err != nil {
		return err
	}
	if len(pids) == 0 && !c.s.alive() {
		return errors.New("container not running")
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	return nil
}

// Wait waits for the init to exit and returns its status as a shell
// would (128+signal when killed). The caller must be the init's parent.
func (c *Container) Wait() (int, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(c.s.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// Exec runs p in the container (every namespace, the cgroup) and returns
// its host pid once it has exec'd.
func (c *Container) Exec(ctx context.Context, o ExecOpts) (int, error) {
	if st := c.Status(); st != Running && st != Created {
		return 0, fmt.Errorf("cannot exec in a %s container", st)
	}
	if o.Process == nil || len(o.Process.Args) == 0 {
		return 0, errors.New("exec: no process args")
	}
	var b strings.Builder
	for _, ns := range c.s.Spec.Linux.Namespaces {
		fmt.Fprintf(&b, "join %s /proc/%d/ns/%s\n", nsNames[ns.Type], c.s.Pid, nsNames[ns.Type])
	}
	b.WriteString("end\n")
	pid, conn, err := c.e.spawn(&spawnReq{argv0: "railcar-exec", bootstrap: b.String(),
		stdio: o.Stdio, extra: o.ExtraFiles, cgroup: c.cg, oomScoreAdj: o.Process.OOMScoreAdj})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	cfg := &initproc.Config{ID: c.s.ID, Bundle: c.s.Bundle, Spec: c.s.Spec, Process: o.Process,
		Exec: true, ExtraFiles: len(o.ExtraFiles)}
	if !hasNamespace(c.s.Spec, specs.MountNamespace) {
		cfg.ExecRoot = fmt.Sprintf("/proc/%d/root", c.s.Pid)
	}
	err = conn.Send(msg.KindConfig, cfg)
	if err == nil {
		err = c.converse(conn, o.Process.Terminal, o.ConsoleSocket, o.OnConsole, func() error { return nil })
	}
	if err == nil {
		// The socket is close-on-exec: EOF means the workload runs.
		if _, _, rerr := conn.Recv(); rerr != io.EOF {
			err = rerr
			if err == nil {
				err = errors.New("exec: unexpected message from init")
			}
		}
	}
	if err != nil {
		err = initDied(pid, err)
		unix.Kill(pid, unix.SIGKILL)
		return 0, err
	}
	if o.Process.ExecCPUAffinity != nil && o.Process.ExecCPUAffinity.Final != "" {
		if err := process.FinalCPUAffinity(pid, o.Process); err != nil {
			return 0, err
		}
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return 0, err
		}
	}
	return pid, nil
}

// Pause freezes the container.
func (c *Container) Pause() error {
	if st := c.Status(); st != Running && st != Created {
		return fmt.Errorf("cannot pause a %s container", st)
	}
	return c.cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != Paused {
		return fmt.Errorf("cannot resume a %s container", st)
	}
	return c.cg.Thaw()
}

// Update changes the resources of a live container.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == Stopped {
		return errors.New("cannot update a stopped container")
	}
	if err := c.cg.Set(r); err != nil {
		return err
	}
	c.s.Spec.Linux.Resources = mergeResources(c.s.Spec.Linux.Resources, r)
	return c.s.write(c.dir)
}

// Processes returns the host pids in the container's cgroup.
func (c *Container) Processes() ([]int, error) { return c.cg.Pids() }

// Delete removes a stopped or created container (runc delete), running
// poststop hooks; force kills a running one first.
func (c *Container) Delete(ctx context.Context, force bool) error {
	switch st := c.Status(); st {
	case Stopped, Created:
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", c.s.ID, st)
		}
	}
	c.kill()
	var herr error
	if h := c.s.Spec.Hooks; h != nil && len(h.Poststop) > 0 {
		if err := hooks.Run(h.Poststop, c.ociState(specs.StateStopped), c.e.monitor); err != nil {
			// Warn and go on removing the container, as the spec asks.
			fmt.Fprintf(os.Stderr, "railcar: warning: poststop hook: %v\n", err)
		}
	}
	if err := c.destroy(); err != nil {
		return err
	}
	return herr
}

// kill stops every process of the container and waits until the cgroup is
// empty and the init gone.
func (c *Container) kill() {
	if c.s.alive() {
		if fd, err := c.s.pidfd(); err == nil {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			unix.Close(fd)
		}
	}
	if c.cg != nil {
		c.signalAll(unix.SIGKILL)
		c.cg.Thaw()
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		busy := c.s.alive()
		if !busy && c.cg != nil {
			pids, _ := c.cg.Pids()
			busy = len(pids) > 0
		}
		if !busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// destroy removes the cgroup and the state directory, and the mounts a
// container without a mount namespace of its own left in ours.
func (c *Container) destroy() error {
	var err error
	if !hasNamespace(c.s.Spec, specs.MountNamespace) && c.s.Rootfs != "" {
		err = unmountUnder(c.s.Rootfs)
	}
	if c.cg != nil {
		err = c.cg.Destroy()
	}
	if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return os.Rename(tmp, path)
}

// rootIDs returns the host uid and gid of the container's root.
func rootIDs(s *specs.Spec) (int, int) {
	host := func(ms []specs.LinuxIDMapping) int {
		for _, m := range ms {
			if m.ContainerID == 0 {
				return int(m.HostID)
			}
		}
		return 0
	}
	return host(s.Linux.UIDMappings), host(s.Linux.GIDMappings)
}

func bootstrapNew(s *specs.Spec) string {
	var b strings.Builder
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			fmt.Fprintf(&b, "join %s %s\n", nsNames[ns.Type], ns.Path)
		} else {
			fmt.Fprintf(&b, "new %s\n", nsNames[ns.Type])
		}
	}
	if to := s.Linux.TimeOffsets; len(to) > 0 {
		b.WriteString("timens ")
		sep := ""
		for _, clock := range []string{"monotonic", "boottime"} {
			if o, ok := to[clock]; ok {
				fmt.Fprintf(&b, "%s%s %d %d", sep, clock, o.Secs, o.Nanosecs)
				sep = ";"
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("end\n")
	return b.String()
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// unmountUnder detaches every mount below dir (not dir itself), deepest
// first.
func unmountUnder(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if m.Mountpoint == dir {
			continue
		}
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

var errInitExited = errors.New("container init exited during setup")

// initDied adds how the init ended to err when it is gone: its exit status
// if it is still a zombie (peeked at, not reaped: the reaper of the caller
// owns that), or its signal.
func initDied(pid int, err error) error {
	var info unix.Siginfo
	if werr := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); werr != nil {
		return err
	}
	// The SIGCHLD layout of siginfo_t, which unix.Siginfo leaves opaque.
	ch := (*struct {
		signo, errno, code, _ int32
		pid, uid, status      int32
	})(unsafe.Pointer(&info))
	switch ch.code {
	case 1: // CLD_EXITED
		return fmt.Errorf("%w (init exited with status %d)", err, ch.status)
	case 2, 3: // CLD_KILLED, CLD_DUMPED
		return fmt.Errorf("%w (init killed by signal %s)", err, unix.SignalName(syscall.Signal(ch.status)))
	}
	return err
}
