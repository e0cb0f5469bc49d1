package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	criurpc "github.com/checkpoint-restore/go-criu/v8/rpc"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux/cgroup"
	"github.com/railcar-oci/railcar/linux/hooks"
)

// CriuOpts are the options of Checkpoint and Restore: runc's checkpoint and
// restore flags.
type CriuOpts struct {
	// ImagePath is the directory of the criu images (required).
	ImagePath string
	// WorkPath is where criu writes its log and work files; default
	// ImagePath.
	WorkPath string
	// ParentPath is the previous (pre-dump) image directory, relative to
	// ImagePath (checkpoint only).
	ParentPath string
	// CriuPath is the criu binary; "" means "criu" in $PATH.
	CriuPath string

	LeaveRunning    bool
	TCPEstablished  bool
	TCPSkipInFlight bool
	LinkRemap       bool
	ExtUnixSk       bool
	ShellJob        bool
	FileLocks       bool
	PreDump         bool
	AutoDedup       bool
	LazyPages       bool
	// StatusFile receives a \0 once the lazy-pages server is ready.
	StatusFile *os.File
	// PageServer is ADDRESS:PORT of a criu page server.
	PageServer string
	// ManageCgroupsMode is soft, full, strict or ignore ("" is criu's
	// default, soft).
	ManageCgroupsMode string
	// EmptyNs lists namespaces ("network") criu creates on restore
	// without restoring their contents. Without it the container's own
	// network namespace is restored as dumped (loopback up, addresses,
	// routes), which the listening and connected sockets in it need.
	EmptyNs []string
}

// RestoreOpts are the options of Engine.Restore.
type RestoreOpts struct {
	// Bundle is the bundle directory (holds config.json unless Spec is set).
	Bundle string
	// Spec, when set, is used instead of reading Bundle/config.json.
	Spec *specs.Spec
	// Stdio become the restored process's standard streams where it had
	// pipes when it was checkpointed.
	Stdio Stdio
	// ConsoleSocket receives the restored terminal's pty master (a
	// container checkpointed with a terminal); OnConsole instead of it.
	ConsoleSocket string
	OnConsole     func(master *os.File) error
	// PidFile, when set, receives the restored init's host pid.
	PidFile string
	// Criu are the criu options (ImagePath required).
	Criu CriuOpts
}

const (
	// descriptorsFile lists what fds 0-2 of the init were at checkpoint
	// time (runc's name and format).
	descriptorsFile = "descriptors.json"
	// checkpointFile records the dump options that a restore must repeat,
	// so that a caller that passes none (containerd) still restores.
	checkpointFile = "railcar-checkpoint.json"
)

// checkpointMeta is checkpointFile.
type checkpointMeta struct {
	TCPEstablished bool   `json:"tcpEstablished,omitempty"`
	ExtUnixSk      bool   `json:"extUnixSk,omitempty"`
	ShellJob       bool   `json:"shellJob,omitempty"`
	FileLocks      bool   `json:"fileLocks,omitempty"`
	EmptyNs        uint32 `json:"emptyNs,omitempty"`
}

func criuCgMode(mode string) (criurpc.CriuCgMode, error) {
	switch mode {
	case "":
		return criurpc.CriuCgMode_DEFAULT, nil
	case "soft":
		return criurpc.CriuCgMode_SOFT, nil
	case "full":
		return criurpc.CriuCgMode_FULL, nil
	case "strict":
		return criurpc.CriuCgMode_STRICT, nil
	case "ignore":
		return criurpc.CriuCgMode_IGNORE, nil
	}
	return 0, fmt.Errorf("invalid manage-cgroups-mode %q (soft, full, strict or ignore)", mode)
}

func emptyNsMask(names []string) (uint32, error) {
	var m uint32
	for _, n := range names {
		switch n {
		case string(specs.NetworkNamespace), "net":
			m |= unix.CLONE_NEWNET
		default:
			return 0, fmt.Errorf("empty-ns: namespace %q is not supported (network only)", n)
		}
	}
	return m, nil
}

// criuNsKey is the key of an external namespace in the images.
func criuNsKey(t specs.LinuxNamespaceType) string {
	n := nsNames[t]
	return "extRoot" + strings.ToUpper(n[:1]) + n[1:] + "NS"
}

func nsPath(s *specs.Spec, t specs.LinuxNamespaceType) string {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path
		}
	}
	return ""
}

// criuConfigFile is the annotation org.criu.config (CRI-O and podman set
// it) or railcar's own default.
func criuConfigFile(s *specs.Spec, o *criurpc.CriuOpts) {
	if f, ok := s.Annotations["org.criu.config"]; ok {
		if f != "" {
			o.ConfigFile = ptr(f)
		}
		return
	}
	o.ConfigFile = ptr("/etc/criu/railcar.conf")
}

// mountDest is a mount destination as criu sees it: resolved inside the
// rootfs.
func mountDest(rootfs, dest string) string {
	dest = cleanDest(dest)
	if p, err := securejoin.SecureJoin(rootfs, dest); err == nil && strings.HasPrefix(p, rootfs) {
		if d := p[len(rootfs):]; d != "" {
			return d
		}
	}
	return dest
}

func cleanDest(p string) string { return filepath.Clean("/" + p) }

func addExtMount(o *criurpc.CriuOpts, key, val string) error {
	// criu < 4.3.1 keeps "mnt[KEY]:VAL" unescaped; an empty key asks for
	// autodetection.
	if key == "" || strings.Contains(key, "]:") {
		return fmt.Errorf("criu: invalid external mount destination %q", key)
	}
	o.ExtMnt = append(o.ExtMnt, &criurpc.ExtMountMap{Key: ptr(key), Val: ptr(val)})
	return nil
}

// devicePaths are the /dev nodes of the container: the defaults and the
// spec's (bind mounts of the host's nodes in a user namespace).
func devicePaths(s *specs.Spec) []string {
	paths := []string{"/dev/null", "/dev/random", "/dev/full", "/dev/tty", "/dev/zero", "/dev/urandom"}
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
	}
	for _, d := range s.Linux.Devices {
		if p := cleanDest(d.Path); !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	return paths
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// Checkpoint dumps the container with criu (runc checkpoint). Unless
// o.LeaveRunning or o.PreDump, the container's processes are gone when it
// returns; the caller deletes the container.
func (c *Container) Checkpoint(ctx context.Context, o CriuOpts) error {
	switch st := c.Status(); st {
	case Running, Paused:
	default:
		return fmt.Errorf("cannot checkpoint a %s container", st)
	}
	if o.ImagePath == "" {
		return errors.New("checkpoint: no image path")
	}
	cgMode, err := criuCgMode(o.ManageCgroupsMode)
	if err != nil {
		return err
	}
	emptyNs, err := emptyNsMask(o.EmptyNs)
	if err != nil {
		return err
	}
	version, err := c.e.criuVersion(o.CriuPath)
	if err != nil {
		return err
	}
	if version < 30000 {
		return fmt.Errorf("criu %d is too old: 3.0 or newer is needed", version)
	}
	// criu dumps no task whose session leader is outside its pid
	// namespace; the init leads its own session (railcar before this
	// checkpoint support did not make it).
	if !o.ShellJob && !sessionLeader(c.s.Pid) && nsPath(c.s.Spec, specs.PIDNamespace) == "" && hasNamespace(c.s.Spec, specs.PIDNamespace) {
		return fmt.Errorf("cannot checkpoint container %s: its init does not lead a session (it was created by an older railcar)", c.s.ID)
	}
	if err := os.MkdirAll(o.ImagePath, 0o700); err != nil {
		return fmt.Errorf("checkpoint image directory: %w", err)
	}
	imageDir, err := os.Open(o.ImagePath)
	if err != nil {
		return fmt.Errorf("checkpoint image directory: %w", err)
	}
	defer imageDir.Close()
	spec := c.s.Spec
	const logName = "dump.log"
	opts := &criurpc.CriuOpts{
		ImagesDirFd:       ptr(int32(imageDir.Fd())),
		LogLevel:          ptr(int32(4)),
		LogFile:           ptr(logName),
		Root:              ptr(c.s.Rootfs),
		ManageCgroups:     ptr(true),
		ManageCgroupsMode: &cgMode,
		NotifyScripts:     ptr(true),
		Pid:               ptr(int32(c.s.Pid)),
		ShellJob:          ptr(o.ShellJob),
		LeaveRunning:      ptr(o.LeaveRunning),
		TcpEstablished:    ptr(o.TCPEstablished),
		TcpSkipInFlight:   ptr(o.TCPSkipInFlight),
		LinkRemap:         ptr(o.LinkRemap),
		ExtUnixSk:         ptr(o.ExtUnixSk),
		FileLocks:         ptr(o.FileLocks),
		EmptyNs:           ptr(emptyNs),
		OrphanPtsMaster:   ptr(true),
		AutoDedup:         ptr(o.AutoDedup),
		LazyPages:         ptr(o.LazyPages),
	}
	if o.WorkPath != "" {
		if err := os.MkdirAll(o.WorkPath, 0o700); err != nil {
			return fmt.Errorf("criu work directory: %w", err)
		}
		wd, err := os.Open(o.WorkPath)
		if err != nil {
			return fmt.Errorf("criu work directory: %w", err)
		}
		defer wd.Close()
		opts.WorkDirFd = ptr(int32(wd.Fd()))
	}
	criuConfigFile(spec, opts)

	// A namespace the container joined by path stays where it is: criu
	// dumps it as external and a restore joins it again.
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace} {
		p := nsPath(spec, t)
		if p == "" {
			continue
		}
		if min := map[specs.LinuxNamespaceType]int{specs.NetworkNamespace: 31100, specs.PIDNamespace: 31500}[t]; version < min {
			return fmt.Errorf("criu %d cannot dump an external %s namespace (%d or newer needed)", version, t, min)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("%s namespace %s: %w", t, p, err)
		}
		opts.External = append(opts.External, fmt.Sprintf("%s[%d]:%s", nsNames[t], st.Ino, criuNsKey(t)))
	}

	// criu freezes the container through its cgroup (v2: criu 3.14 on)
	// rather than seizing task by task, which a forking workload escapes.
	if paths := c.cg.Paths(); cgroup.Mode() == cgroup.ModeV2 {
		if version >= 31400 && paths[""] != "" {
			opts.FreezeCgroup = ptr(paths[""])
		}
	} else if p := paths["freezer"]; p != "" {
		opts.FreezeCgroup = ptr(p)
	}

	if o.PageServer != "" {
		host, port, err := splitHostPort(o.PageServer)
		if err != nil {
			return err
		}
		opts.Ps = &criurpc.CriuPageServerInfo{Address: ptr(host), Port: ptr(int32(port))}
	}
	if o.ParentPath != "" {
		opts.ParentImg = ptr(o.ParentPath)
		opts.TrackMem = ptr(true)
	}
	typ := criurpc.CriuReqType_DUMP
	if o.PreDump {
		if err := c.e.criuFeatures(o.CriuPath, &criurpc.CriuFeatures{MemTrack: ptr(true)}); err != nil {
			return err
		}
		typ = criurpc.CriuReqType_PRE_DUMP
	}
	var statusFile *os.File
	if o.LazyPages {
		if err := c.e.criuFeatures(o.CriuPath, &criurpc.CriuFeatures{LazyPages: ptr(true)}); err != nil {
			return err
		}
		statusFile = o.StatusFile
	}

	if !o.PreDump {
		if err := c.dumpMounts(opts); err != nil {
			return err
		}
		if err := c.writeCheckpointFiles(o, emptyNs); err != nil {
			return err
		}
	}

	logPath := criuLogPath(o.ImagePath, o.WorkPath, logName)
	_, err = c.e.criuSwrk(&criuCall{
		path: o.CriuPath,
		req:  &criurpc.CriuReq{Type: &typ, Opts: opts},
		log:  logPath,
		notify: func(n *criurpc.CriuNotify, _ []*os.File) error {
			if n.GetScript() == "status-ready" && statusFile != nil {
				statusFile.Write([]byte{0})
				statusFile.Close()
				statusFile = nil
			}
			return nil
		},
	})
	return err
}

// dumpMounts names the container's mounts that criu cannot dump itself:
// bind mounts of host paths, the device nodes, the masked files.
func (c *Container) dumpMounts(opts *criurpc.CriuOpts) error {
	spec, rootfs := c.s.Spec, c.s.Rootfs
	for _, m := range spec.Mounts {
		if !isBind(m) {
			continue
		}
		d := mountDest(rootfs, m.Destination)
		if err := addExtMount(opts, d, d); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", c.s.Pid, cleanDest(p)))
		if err != nil || fi.IsDir() {
			continue // absent, or masked with a tmpfs criu dumps
		}
		if err := addExtMount(opts, cleanDest(p), "/dev/null"); err != nil {
			return err
		}
	}
	for _, p := range devicePaths(spec) {
		if err := addExtMount(opts, p, p); err != nil {
			return err
		}
	}
	return nil
}

// writeCheckpointFiles records fds 0-2 of the init (pipes are reconnected
// to the restorer's stdio) and the options a restore must repeat.
func (c *Container) writeCheckpointFiles(o CriuOpts, emptyNs uint32) error {
	fds := make([]string, 3)
	for i := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", c.s.Pid, i))
		if err == nil {
			fds[i] = l
		}
	}
	b, err := json.Marshal(fds)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.ImagePath, descriptorsFile), b, 0o600); err != nil {
		return err
	}
	b, err = json.Marshal(checkpointMeta{TCPEstablished: o.TCPEstablished, ExtUnixSk: o.ExtUnixSk,
		ShellJob: o.ShellJob, FileLocks: o.FileLocks, EmptyNs: emptyNs})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.ImagePath, checkpointFile), b, 0o600)
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", 0, errors.New("page server: use ADDRESS:PORT")
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("page server: invalid port %q", s[i+1:])
	}
	return strings.Trim(s[:i], "[]"), port, nil
}

// Restore creates container id from a checkpoint (runc restore): criu
// restores the process tree into new namespaces on the bundle's rootfs and
// the container's cgroup, as a child of this process; the restored tree's
// root is the container's init from then on.
func (e *Engine) Restore(ctx context.Context, id string, o RestoreOpts) (_ *Container, err error) {
	co := o.Criu
	if co.ImagePath == "" {
		return nil, errors.New("restore: no image path")
	}
	cgMode, err := criuCgMode(co.ManageCgroupsMode)
	if err != nil {
		return nil, err
	}
	emptyNs, err := emptyNsMask(co.EmptyNs)
	if err != nil {
		return nil, err
	}
	var meta checkpointMeta
	if b, err := os.ReadFile(filepath.Join(co.ImagePath, checkpointFile)); err == nil {
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, fmt.Errorf("%s: %w", checkpointFile, err)
		}
	} else if _, serr := os.Stat(co.ImagePath); serr != nil {
		return nil, fmt.Errorf("restore: image directory: %w", serr)
	}
	bundle, rootfs, spec, err := loadBundle(id, o.Bundle, o.Spec)
	if err != nil {
		return nil, err
	}
	version, err := e.criuVersion(co.CriuPath)
	if err != nil {
		return nil, err
	}
	if version < 30000 {
		return nil, fmt.Errorf("criu %d is too old: 3.0 or newer is needed", version)
	}
	c, err := e.newContainer(id, bundle, rootfs, spec)
	if err != nil {
		return nil, err
	}
	dir := c.dir
	defer func() {
		if err != nil {
			c.kill()
			c.destroy()
		}
	}()
	if c.cg, err = cgroup.New(id, spec.Linux.CgroupsPath, e.cfg.SystemdCgroup); err != nil {
		return nil, err
	}

	imageDir, err := os.Open(co.ImagePath)
	if err != nil {
		return nil, fmt.Errorf("restore: image directory: %w", err)
	}
	defer imageDir.Close()

	// criu wants the root to be a mount point whose parent is not
	// overmounted: bind the rootfs into the state directory.
	root := filepath.Join(dir, "criu-root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount(rootfs, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("bind rootfs for criu: %w", err)
	}
	defer func() {
		unix.Unmount(root, unix.MNT_DETACH)
		os.Remove(root)
	}()
	if err := restoreMountpoints(bundle, rootfs, spec); err != nil {
		return nil, err
	}

	const logName = "restore.log"
	opts := &criurpc.CriuOpts{
		ImagesDirFd:       ptr(int32(imageDir.Fd())),
		EvasiveDevices:    ptr(true),
		LogLevel:          ptr(int32(4)),
		LogFile:           ptr(logName),
		RstSibling:        ptr(true),
		Root:              ptr(root),
		ManageCgroups:     ptr(true),
		ManageCgroupsMode: &cgMode,
		NotifyScripts:     ptr(true),
		ShellJob:          ptr(co.ShellJob || meta.ShellJob),
		ExtUnixSk:         ptr(co.ExtUnixSk || meta.ExtUnixSk),
		TcpEstablished:    ptr(co.TCPEstablished || meta.TCPEstablished),
		FileLocks:         ptr(co.FileLocks || meta.FileLocks),
		EmptyNs:           ptr(emptyNs | meta.EmptyNs),
		OrphanPtsMaster:   ptr(true),
		AutoDedup:         ptr(co.AutoDedup),
		LazyPages:         ptr(co.LazyPages),
	}
	if co.WorkPath != "" {
		if err := os.MkdirAll(co.WorkPath, 0o700); err != nil {
			return nil, fmt.Errorf("criu work directory: %w", err)
		}
		wd, err := os.Open(co.WorkPath)
		if err != nil {
			return nil, fmt.Errorf("criu work directory: %w", err)
		}
		defer wd.Close()
		opts.WorkDirFd = ptr(int32(wd.Fd()))
	}
	criuConfigFile(spec, opts)

	var extra []*os.File
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		switch ns.Type {
		case specs.NetworkNamespace, specs.PIDNamespace:
			f, err := os.Open(ns.Path)
			if err != nil {
				return nil, fmt.Errorf("%s namespace %s must exist for the restore: %w", ns.Type, ns.Path, err)
			}
			// criu's fds: 0-2 stdio, 3 the rpc socket, then extra.
			opts.InheritFd = append(opts.InheritFd, &criurpc.InheritFd{Key: ptr(criuNsKey(ns.Type)), Fd: ptr(int32(4 + len(extra)))})
			extra = append(extra, f)
		case specs.CgroupNamespace:
			return nil, errors.New("restore: criu cannot join an existing cgroup namespace")
		default:
			opts.JoinNs = append(opts.JoinNs, &criurpc.JoinNamespace{Ns: ptr(nsNames[ns.Type]), NsFile: ptr(ns.Path)})
		}
	}

	for _, m := range spec.Mounts {
		if !isBind(m) {
			continue
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		if err := addExtMount(opts, mountDest(rootfs, m.Destination), src); err != nil {
			return nil, err
		}
	}
	if len(spec.Linux.MaskedPaths) > 0 {
		if err := addExtMount(opts, "/dev/null", "/dev/null"); err != nil {
			return nil, err
		}
	}
	for _, p := range devicePaths(spec) {
		if p == "/dev/null" && len(spec.Linux.MaskedPaths) > 0 {
			continue
		}
		if err := addExtMount(opts, p, p); err != nil {
			return nil, err
		}
	}

	// Pipes at fds 0-2 of the checkpointed init are reconnected to criu's
	// own stdio, which are the new ones.
	if b, err := os.ReadFile(filepath.Join(co.ImagePath, descriptorsFile)); err == nil {
		var fds []string
		if err := json.Unmarshal(b, &fds); err != nil {
			return nil, fmt.Errorf("%s: %w", descriptorsFile, err)
		}
		for i, s := range fds {
			if i < 3 && strings.HasPrefix(s, "pipe:") {
				opts.InheritFd = append(opts.InheritFd, &criurpc.InheritFd{Key: ptr(s), Fd: ptr(int32(i))})
			}
		}
	}

	res := specs.LinuxResources{}
	if spec.Linux.Resources != nil {
		res = *spec.Linux.Resources
	}
	res.Devices = deviceRules(spec)
	pid := 0
	typ := criurpc.CriuReqType_RESTORE
	_, err = e.criuSwrk(&criuCall{
		path:  co.CriuPath,
		req:   &criurpc.CriuReq{Type: &typ, Opts: opts},
		stdio: o.Stdio,
		extra: extra,
		log:   criuLogPath(co.ImagePath, co.WorkPath, logName),
		started: func(criuPid int) error {
			// criu restores the tree into the cgroup it runs in.
			if err := c.cg.Apply(criuPid); err != nil {
				return err
			}
			if err := c.cg.Set(&res); err != nil {
				return err
			}
			roots, err := cgroupRoots(criuPid)
			if err != nil {
				return err
			}
			opts.CgRoot = roots
			return nil
		},
		notify: func(n *criurpc.CriuNotify, files []*os.File) error {
			switch n.GetScript() {
			case "setup-namespaces":
				c.s.Pid = int(n.GetPid())
				return c.restoreHooks()
			case "post-restore":
				pid = int(n.GetPid())
			case "orphan-pts-master":
				if len(files) != 1 {
					return errors.New("criu sent no pty master")
				}
				return sendConsole(files[0], o.ConsoleSocket, o.OnConsole)
			}
			return nil
		},
	})
	if err != nil {
		if pid > 0 {
			c.s.Pid = pid
		}
		return nil, err
	}
	if pid <= 0 {
		return nil, errors.New("restore: criu reported no restored process")
	}
	c.s.Pid = pid
	if c.s.Start, _, err = pidStart(pid); err != nil {
		return nil, fmt.Errorf("restored init vanished: %w", err)
	}
	// criu restores into a new time namespace (its clocks go on from
	// the checkpoint): exec must join it too.
	if !hasNamespace(spec, specs.TimeNamespace) && !sameNsInode("/proc/self/ns/time", fmt.Sprintf("/proc/%d/ns/time", pid)) {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
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

// restoreHooks runs the hooks of creation time that prepare the
// namespaces (prestart, createRuntime) once criu made them.
func (c *Container) restoreHooks() error {
	h := c.s.Spec.Hooks
	if h == nil {
		return nil
	}
	for _, hs := range []struct {
		name   string
		list   []specs.Hook
		status specs.ContainerState
	}{
		// The states Create gives them.
		{"prestart", h.Prestart, specs.StateCreated}, //nolint:staticcheck // prestart is deprecated, still honoured
		{"createRuntime", h.CreateRuntime, specs.StateCreating},
	} {
		if err := hooks.Run(hs.list, c.ociState(hs.status), c.e.monitor); err != nil {
			return fmt.Errorf("%s hook: %w", hs.name, err)
		}
	}
	return nil
}

// sameNsInode reports whether two namespace files are the same namespace;
// true when either cannot be read.
func sameNsInode(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return true
	}
	return sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

// cgroupRoots is criu's --cgroup-root for every hierarchy pid is in.
func cgroupRoots(pid int) ([]*criurpc.CgroupRoot, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var roots []*criurpc.CgroupRoot
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			roots = append(roots, &criurpc.CgroupRoot{Ctrl: ptr(ctrl), Path: ptr(parts[2])})
		}
	}
	return roots, nil
}

// restoreMountpoints creates in the rootfs the mountpoints that container
// creation made and criu expects (a restore on another host, or a rootfs
// unpacked anew). Mountpoints on a tmpfs of the container are criu's to
// make: it restores the tmpfs contents.
func restoreMountpoints(bundle, rootfs string, spec *specs.Spec) error {
	onTmpfs := func(dest string) bool {
		for _, m := range spec.Mounts {
			if m.Type == "tmpfs" && strings.HasPrefix(dest, cleanDest(m.Destination)+"/") {
				return true
			}
		}
		return false
	}
	for _, m := range spec.Mounts {
		dest := cleanDest(m.Destination)
		if m.Type == "cgroup" || m.Type == "cgroup2" || onTmpfs(dest) {
			continue
		}
		p, err := securejoin.SecureJoin(rootfs, dest)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		dirMount := true
		if isBind(m) {
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundle, src)
			}
			if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
				dirMount = false
			}
		}
		if dirMount {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("create mountpoint %s: %w", dest, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create mountpoint %s: %w", dest, err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create mountpoint %s: %w", dest, err)
		}
		f.Close()
	}
	return nil
}

// sessionLeader reports whether pid leads its session (true when unknown).
func sessionLeader(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return true
	}
	f := strings.Fields(string(b[i+1:]))
	// state ppid pgrp session
	return len(f) < 4 || f[3] == strconv.Itoa(pid)
}
