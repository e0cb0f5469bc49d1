package initproc

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux/hooks"
	"github.com/railcar-oci/railcar/linux/msg"
	"github.com/railcar-oci/railcar/linux/process"
	"github.com/railcar-oci/railcar/linux/rootfs"
)

// IsInit reports whether this process is a re-executed init.
func IsInit() bool { return os.Getenv(EnvInit) != "" }

// Main runs the init and never returns. Call it first thing in main when
// IsInit is true.
func Main() {
	// Capabilities, the seccomp filter and the AppArmor exec label are
	// per thread: everything happens on this one, which then calls execve.
	runtime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(EnvInit))
	if err != nil {
		fmt.Fprintf(os.Stderr, "railcar init: bad %s\n", EnvInit)
		os.Exit(1)
	}
	os.Unsetenv(EnvInit)
	unix.CloseOnExec(fd)
	conn := msg.New(os.NewFile(uintptr(fd), "init"))
	if err := run(conn); err != nil {
		if startFifo != nil {
			// `start` is waiting on the fifo for the exec: tell it why
			// there will be none (best effort; stderr has it too).
			startFifo.Write([]byte("E" + err.Error()))
		}
		if conn.SendError(err) != nil {
			// The parent is gone (after create): stderr is all there is.
			fmt.Fprintf(os.Stderr, "railcar init: %v\n", err)
		}
		os.Exit(1)
	}
	os.Exit(0)
}

// startFifo is the exec fifo once `start` has opened it: until execve
// closes it, an error of the init goes there.
var startFifo *os.File

func run(conn *msg.Conn) error {
	var c Config
	files, err := conn.Expect(msg.KindConfig, &c)
	if err != nil {
		return err
	}
	if len(files) != len(c.IDMapped) {
		return fmt.Errorf("config came with %d fds, want %d", len(files), len(c.IDMapped))
	}
	trees := map[int]*os.File{}
	for i, idx := range c.IDMapped {
		trees[idx] = files[i]
	}
	if c.Process == nil || len(c.Process.Args) == 0 {
		return errors.New("no process to run")
	}
	if c.FifoFD > 0 {
		unix.CloseOnExec(c.FifoFD)
	}
	if !c.Exec {
		if err := setupContainer(conn, &c, trees); err != nil {
			return err
		}
		// The init leads a session of its own, as runc's does (a terminal
		// makes one in setupConsole): criu dumps no task whose session
		// leader is outside its pid namespace.
		if !c.Process.Terminal {
			if _, err := unix.Setsid(); err != nil {
				return fmt.Errorf("setsid: %w", err)
			}
		}
	} else {
		if err := enterRoot(c.ExecRoot); err != nil {
			return err
		}
		if c.Process.Terminal {
			if err := setupConsole(conn, false); err != nil {
				return err
			}
		}
	}
	if !c.Exec {
		if err := conn.Send(msg.KindReady, nil); err != nil {
			return err
		}
		if _, err := conn.Expect(msg.KindContinue, nil); err != nil {
			return err
		}
	}
	// Nothing of railcar's may reach the workload: everything past the
	// preserved fds is closed on exec.
	if err := unix.CloseRange(uint(3+c.ExtraFiles), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	pc := &process.Config{Process: c.Process, Linux: c.Spec.Linux, NoNewKeyring: c.NoNewKeyring, ContainerID: c.ID}
	notify := func(f *os.File) error { return conn.Send(msg.KindSeccomp, nil, f) }
	if err := process.Apply(pc, notify); err != nil {
		return err
	}
	path, err := process.LookPath(c.Process)
	if err != nil {
		return err
	}
	// A notify listener is set up while the parent is still there to
	// forward it; other filters come as late as possible.
	early := hasNotify(c.Spec.Linux)
	if early {
		if err := process.LateSeccomp(pc, notify); err != nil {
			return err
		}
	}
	if err := conn.Send(msg.KindApplied, nil); err != nil {
		return err
	}
	var fifo *os.File
	if !c.Exec {
		// The fifo stays open (close-on-exec) until execve: `start`
		// reads EOF once the workload runs.
		if fifo, err = waitStart(c.FifoFD); err != nil {
			return err
		}
		startFifo = fifo
		if h := c.Spec.Hooks; h != nil && len(h.StartContainer) > 0 {
			st := &specs.State{Version: specs.Version, ID: c.ID, Status: specs.StateCreated,
				Pid: os.Getpid(), Bundle: c.Bundle, Annotations: c.Spec.Annotations}
			if err := hooks.Run(h.StartContainer, st, nil); err != nil {
				return fmt.Errorf("startContainer hook: %w", err)
			}
		}
	}
	if !early {
		if err := process.LateSeccomp(pc, notify); err != nil {
			return err
		}
	}
	if c.InitMode && !c.Exec {
		return rcInit(path, c.Process, c.ExtraFiles, fifo)
	}
	return execve(path, c.Process)
}

// enterRoot chroots an exec'd process into the container's root when the
// container shares the host's mount namespace (root empty: nothing to do).
func enterRoot(root string) error {
	if root == "" {
		return nil
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("enter container root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("enter container root: %w", err)
	}
	return unix.Chdir("/")
}

func execve(path string, p *specs.Process) error {
	for {
		err := unix.Exec(path, p.Args, p.Env)
		if err == unix.EINTR {
			continue
		}
		return fmt.Errorf("exec %q: %w", p.Args[0], err)
	}
}

// hasNotify reports whether the seccomp profile hands a listener fd out.
func hasNotify(l *specs.Linux) bool {
	if l == nil || l.Seccomp == nil {
		return false
	}
	if l.Seccomp.DefaultAction == specs.ActNotify {
		return true
	}
	for _, sc := range l.Seccomp.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// waitStart blocks until `railcar start` opens the exec fifo for reading,
// and returns it open.
func waitStart(fd int) (*os.File, error) {
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := f.Write([]byte{'0'}); err != nil {
		f.Close()
		return nil, fmt.Errorf("write exec fifo: %w", err)
	}
	return f, nil
}

func setupContainer(conn *msg.Conn, c *Config, trees map[int]*os.File) error {
	var mntNS, newUTS bool
	for _, ns := range c.Spec.Linux.Namespaces {
		switch ns.Type {
		case specs.MountNamespace:
			mntNS = true
		case specs.UTSNamespace:
			newUTS = true
		case specs.NetworkNamespace:
			// A new network namespace comes with its loopback up, as
			// runc brings it up: 127.0.0.1 works before any CNI runs.
			if ns.Path == "" {
				if err := loopbackUp(); err != nil {
					return err
				}
			}
		}
	}
	// Hostname, sysctls and the console go in after pivot_root and
	// before anything is made read-only or masked.
	inRoot := func() error {
		if c.Spec.Hostname != "" {
			if !newUTS {
				return errors.New("hostname requires a UTS namespace")
			}
			if err := unix.Sethostname([]byte(c.Spec.Hostname)); err != nil {
				return fmt.Errorf("sethostname: %w", err)
			}
		}
		if c.Spec.Domainname != "" {
			if !newUTS {
				return errors.New("domainname requires a UTS namespace")
			}
			if err := unix.Setdomainname([]byte(c.Spec.Domainname)); err != nil {
				return fmt.Errorf("setdomainname: %w", err)
			}
		}
		for k, v := range c.Spec.Linux.Sysctl {
			if err := writeSysctl(k, v); err != nil {
				return err
			}
		}
		// A missing cwd is made, as runc does: in the new root, before a
		// read-only root is remounted, so nothing outside can be reached.
		if cwd := c.Process.Cwd; cwd != "" {
			if err := os.MkdirAll(cwd, 0o755); err != nil {
				return fmt.Errorf("create cwd %q: %w", cwd, err)
			}
		}
		if c.Process.Terminal {
			return setupConsole(conn, true)
		}
		return nil
	}
	return rootfs.Setup(&rootfs.Config{Spec: c.Spec, Rootfs: c.Rootfs, NoPivot: c.NoPivot,
		BeforeReadonly: inRoot, IDMapped: trees, SharedMountNS: !mntNS})
}

// loopbackUp sets IFF_UP on "lo" of this (new) network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring loopback up: %w", err)
	}
	return nil
}

// writeSysctl writes /proc/sys/<key> of the container's own /proc, opened
// by process.OpenProc: beneath a /proc verified to be procfs, without
// symlinks or mount crossings, so nothing in the rootfs can redirect the
// write.
func writeSysctl(key, value string) error {
	rel := strings.ReplaceAll(key, ".", "/")
	if strings.Contains(rel, "..") || strings.HasPrefix(rel, "/") {
		return fmt.Errorf("sysctl %q: invalid name", key)
	}
	f, err := process.OpenProc("sys/"+rel, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return fmt.Errorf("sysctl %q: %w", key, err)
	}
	defer f.Close()
	if _, err := f.WriteString(value); err != nil {
		return fmt.Errorf("sysctl %q=%q: %w", key, value, err)
	}
	return nil
}

// setupConsole opens a pty in the container's devpts, makes it the
// controlling terminal and stdio, and sends the master to the parent.
func setupConsole(conn *msg.Conn, bindConsole bool) error {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master: no path lookup the
	// container could redirect.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return fmt.Errorf("open pty peer: %w", errno)
	}
	slave := os.NewFile(sfd, "pty")
	defer slave.Close()
	slavePath := "/dev/pts/" + strconv.Itoa(n)
	if bindConsole {
		if err := rootfs.BindConsole(slavePath); err != nil {
			return err
		}
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(sfd), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(int(sfd), i, 0); err != nil {
			return fmt.Errorf("dup pty: %w", err)
		}
	}
	return conn.Send(msg.KindConsole, &Console{Slave: slavePath}, master)
}

// rcInit runs the workload as a child and stays as PID 1: it reaps every
// child, forwards signals to the workload and exits with its status.
func rcInit(path string, p *specs.Process, extra int, fifo *os.File) error {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	files := make([]uintptr, 3+extra)
	for i := range files {
		files[i] = uintptr(i)
	}
	pid, err := syscall.ForkExec(path, p.Args, &syscall.ProcAttr{Env: p.Env, Files: files})
	if err != nil {
		return fmt.Errorf("exec %q: %w", p.Args[0], err)
	}
	// The workload runs: let `start` return.
	if fifo != nil {
		fifo.Close()
	}
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig == unix.SIGURG || sig == unix.SIGPIPE {
			// SIGURG is the Go runtime's own preemption signal.
			continue
		}
		if sig != unix.SIGCHLD {
			unix.Kill(pid, sig)
			continue
		}
		for {
			var ws unix.WaitStatus
			got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if got <= 0 || err != nil {
				break
			}
			if got == pid {
				if ws.Signaled() {
					os.Exit(128 + int(ws.Signal()))
				}
				os.Exit(ws.ExitStatus())
			}
		}
	}
	return nil
}
