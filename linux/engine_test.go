package linux_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/railcar-oci/railcar/linux"
	"github.com/railcar-oci/railcar/linux/initproc"
	_ "github.com/railcar-oci/railcar/linux/nsenter"
)

func TestMain(m *testing.M) {
	if initproc.IsInit() {
		initproc.Main()
	}
	os.Exit(m.Run())
}

// bundle makes a busybox bundle and a default spec for it.
func bundle(t *testing.T, args ...string) (string, *specs.Spec) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "echo", "cat", "sleep", "id", "hostname", "ls", "true", "false", "grep", "kill"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}},
		Hostname: "railcar",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "ipc"}, {Type: "uts"}, {Type: "network"}}},
	}
	return dir, s
}

func engine(t *testing.T) *linux.Engine {
	e, err := linux.New(linux.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func run(t *testing.T, e *linux.Engine, id, dir string, s *specs.Spec) (string, int) {
	t.Helper()
	r, w, _ := os.Pipe()
	c, err := e.Create(context.Background(), id, linux.CreateOpts{Bundle: dir, Spec: s, Stdio: linux.Stdio{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("create: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	var out bytes.Buffer
	out.ReadFrom(r)
	code, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := c.Delete(context.Background(), false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	return out.String(), code
}

func TestRunEcho(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "echo hello; hostname; echo pid $$; exit 3")
	out, code := run(t, engine(t), "echo", dir, s)
	if code != 3 || !strings.Contains(out, "hello\nrailcar\npid 1\n") {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestUserNamespace(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "cat /proc/self/uid_map; id -u")
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The container's root must be able to reach its rootfs.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	out, code := run(t, engine(t), "userns", dir, s)
	if code != 0 || !strings.Contains(out, "100000") {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestExec(t *testing.T) {
	dir, s := bundle(t, "sleep", "100")
	e := engine(t)
	c, err := e.Create(context.Background(), "exec", linux.CreateOpts{Bundle: dir, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(context.Background(), true)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, w, _ := os.Pipe()
	pid, err := c.Exec(context.Background(), linux.ExecOpts{Process: &specs.Process{Args: []string{"sh", "-c", "hostname; echo $$"}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio: linux.Stdio{Stdout: w}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.ReadFrom(r)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if !strings.HasPrefix(out.String(), "railcar\n") || ws.ExitStatus() != 0 {
		t.Fatalf("exec out %q status %v", out.String(), ws)
	}
	if st, _ := c.State(); st.Status != linux.Running {
		t.Fatalf("status %s", st.Status)
	}
	if err := c.Signal(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if err := c.Delete(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load("exec"); err == nil {
		t.Fatal("state left after delete")
	}
	_ = exec.Command
}

func TestExecUserNamespace(t *testing.T) {
	dir, s := bundle(t, "sleep", "100")
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"}, specs.LinuxNamespace{Type: "cgroup"}, specs.LinuxNamespace{Type: "time"})
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	e := engine(t)
	c, err := e.Create(context.Background(), "execuserns", linux.CreateOpts{Bundle: dir, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(context.Background(), true)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, w, _ := os.Pipe()
	pid, err := c.Exec(context.Background(), linux.ExecOpts{Process: &specs.Process{Args: []string{"sh", "-c", "cat /proc/self/uid_map; cat /proc/uptime; cat /proc/self/cgroup"}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio: linux.Stdio{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.ReadFrom(r)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	o := out.String()
	if !strings.Contains(o, "200000") || ws.ExitStatus() != 0 {
		t.Fatalf("exec out %q status %v", o, ws)
	}
	var up float64
	for _, l := range strings.Split(o, "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.Contains(f[0], ".") {
			up = parseFloat(f[0])
		}
	}
	if up < 86400*365 {
		t.Fatalf("time namespace offset not seen in uptime: %q", o)
	}
	if !strings.Contains(o, ":/\n") {
		t.Fatalf("cgroup namespace root not seen: %q", o)
	}
	// The exec'd process is in the container's cgroup on the host.
	pids, err := c.Processes()
	if err != nil || len(pids) < 1 {
		t.Fatalf("processes %v %v", pids, err)
	}
}

func parseFloat(s string) float64 {
	var f float64
	for i, part := range strings.SplitN(s, ".", 2) {
		for _, ch := range part {
			if i == 0 {
				f = f*10 + float64(ch-'0')
			}
		}
	}
	return f
}

func TestInitMode(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "sleep 0.1 & cat /proc/1/cmdline; echo; echo me $$; exit 5")
	s.Annotations = map[string]string{linux.InitAnnotation: "true"}
	out, code := run(t, engine(t), "initmode", dir, s)
	if code != 5 || !strings.HasPrefix(out, "rc-init") || strings.Contains(out, "me 1\n") {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestConsole(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "tty; echo on-tty")
	s.Process.Terminal = true
	e := engine(t)
	got := make(chan string, 1)
	c, err := e.Create(context.Background(), "console", linux.CreateOpts{Bundle: dir, Spec: s, Stdio: linux.Stdio{Stderr: os.Stderr}, OnConsole: func(m *os.File) error {
		fd, err := syscall.Dup(int(m.Fd()))
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), "master")
		go func() {
			var b bytes.Buffer
			b.ReadFrom(f)
			got <- b.String()
		}()
		return nil
	}})
	if err != nil {
		select {
		case o := <-got:
			t.Fatalf("%v; console: %q", err, o)
		case <-time.After(time.Second):
			t.Fatal(err)
		}
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	c.Delete(context.Background(), false)
	if o := <-got; !strings.Contains(o, "/dev/pts/0") || !strings.Contains(o, "on-tty") {
		t.Fatalf("console out %q", o)
	}
}

func TestBadSpecLeavesNothing(t *testing.T) {
	dir, s := bundle(t, "true")
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 4294967000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e := engine(t)
	if _, err := e.Create(context.Background(), "bad", linux.CreateOpts{Bundle: dir, Spec: s}); err == nil {
		t.Fatal("impossible mapping accepted")
	}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Process.Args = []string{"/does/not/exist"}
	if _, err := e.Create(context.Background(), "bad", linux.CreateOpts{Bundle: dir, Spec: s}); err == nil || !strings.Contains(err.Error(), "exist") {
		t.Fatalf("missing binary: %v", err)
	}
	ents, _ := os.ReadDir(e.Root())
	if len(ents) != 0 {
		t.Fatalf("state left: %v", ents)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/railcar/bad"); err == nil {
		t.Fatal("cgroup left")
	}
}

func TestIDMappedMount(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "ls -ln /data; touch /data/new; ls -ln /data/new")
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	os.WriteFile(filepath.Join(data, "f"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "rootfs", "data"), 0o755)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"bind", "idmap"}})
	out, code := run(t, engine(t), "idmap", dir, s)
	// Host root's file shows as the container's root, and what the
	// container's root creates is owned by host root on disk.
	if code != 0 || !strings.Contains(out, " 0        0 ") {
		t.Fatalf("code %d out %q", code, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(data, "new"), &st); err != nil || st.Uid != 0 {
		t.Fatalf("new file on host: uid %d err %v", st.Uid, err)
	}
}

// A workload that exits at once still counts as started: start returns
// when it has exec'd, not while it lives.
func TestStartOfShortWorkload(t *testing.T) {
	e := engine(t)
	for i := 0; i < 20; i++ {
		dir, s := bundle(t, "true")
		if _, code := run(t, e, fmt.Sprintf("short-%d", i), dir, s); code != 0 {
			t.Fatalf("run %d: exit code %d", i, code)
		}
	}
}

// An init that fails after `start` opened the fifo (here a startContainer
// hook) makes start fail with the init's reason.
func TestStartReportsInitFailure(t *testing.T) {
	dir, s := bundle(t, "true")
	s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/false"}}}
	e := engine(t)
	c, err := e.Create(context.Background(), "hookfail", linux.CreateOpts{Bundle: dir, Spec: s})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer c.Delete(context.Background(), true)
	err = c.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "startContainer hook") {
		t.Fatalf("start: %v, want the startContainer hook's failure", err)
	}
}

// A signal the caller ignores (as under nohup) is not ignored in the
// container: the workload can trap it.
func TestIgnoredSignalsReset(t *testing.T) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Reset(syscall.SIGHUP, syscall.SIGPIPE)
	dir, s := bundle(t, "sh", "-c", `trap "echo got HUP" HUP; kill -HUP $$; grep SigIgn /proc/self/status`)
	out, code := run(t, engine(t), "sigreset", dir, s)
	if code != 0 || !strings.Contains(out, "got HUP") || !strings.Contains(out, "SigIgn:\t0000000000000000") {
		t.Fatalf("code %d out %q", code, out)
	}
}

// A container without a mount namespace of its own runs chrooted into its
// rootfs, and so does what is exec'd into it.
func TestExecWithoutMountNamespace(t *testing.T) {
	dir, s := bundle(t, "sleep", "100")
	s.Mounts = []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: "pid"}, {Type: "uts"}}
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "marker"), []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := engine(t)
	c, err := e.Create(context.Background(), "nomntns", linux.CreateOpts{Bundle: dir, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(context.Background(), true)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, w, _ := os.Pipe()
	pid, err := c.Exec(context.Background(), linux.ExecOpts{Process: &specs.Process{Args: []string{"sh", "-c", "cat /marker; ls /"}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio: linux.Stdio{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.ReadFrom(r)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if !strings.HasPrefix(out.String(), "inside\n") || strings.Contains(out.String(), "usr") || ws.ExitStatus() != 0 {
		t.Fatalf("exec out %q status %v: not in the container's root", out.String(), ws)
	}
	c.Signal(syscall.SIGKILL, false)
	c.Wait()
	if err := c.Delete(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), dir) {
		t.Fatalf("mounts left under %s after delete", dir)
	}
}

// A cwd missing from the rootfs is made, as runc makes it.
func TestMissingCwdIsCreated(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "pwd")
	s.Process.Cwd = "/new/dir"
	out, code := run(t, engine(t), "cwd", dir, s)
	if code != 0 || out != "/new/dir\n" {
		t.Fatalf("code %d out %q", code, out)
	}
}

// A new network namespace has its loopback up, as under runc.
func TestLoopbackUp(t *testing.T) {
	dir, s := bundle(t, "cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags")
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro", "nosuid", "noexec", "nodev"}})
	out, code := run(t, engine(t), "lo", dir, s)
	f := strings.Fields(out)
	if code != 0 || len(f) != 2 {
		t.Fatalf("code %d out %q", code, out)
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 32)
	if err != nil || flags&1 == 0 {
		t.Fatalf("lo flags %q: not up (out %q)", f[1], out)
	}
}

// An exec without stdin or stderr gets the host's /dev/null for them, not
// closed fds that its Go runtime would fill by opening /dev/null itself
// (inside the container, where the container decides what that is, and
// racing the device cgroup rules of a new container).
func TestExecWithoutDevNull(t *testing.T) {
	dir, s := bundle(t, "sleep", "100")
	for _, a := range []string{"rm", "stat"} {
		os.Symlink("busybox", filepath.Join(dir, "rootfs", "bin", a))
	}
	e := engine(t)
	c, err := e.Create(context.Background(), "nodevnull", linux.CreateOpts{Bundle: dir, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(context.Background(), true)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	execOut := func(script string) string {
		t.Helper()
		r, w, _ := os.Pipe()
		defer r.Close()
		pid, err := c.Exec(context.Background(), linux.ExecOpts{Process: &specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/", Env: []string{"PATH=/bin"}}, Stdio: linux.Stdio{Stdout: w}})
		w.Close()
		if err != nil {
			t.Fatalf("exec %q: %v", script, err)
		}
		var out bytes.Buffer
		out.ReadFrom(r)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		if ws.ExitStatus() != 0 {
			t.Fatalf("exec %q: status %v, out %q", script, ws, out.String())
		}
		return out.String()
	}
	execOut("rm /dev/null")
	if got := execOut("stat -L -c %t:%T /proc/self/fd/0 /proc/self/fd/2"); got != "1:3\n1:3\n" {
		t.Fatalf("stdin and stderr of an exec without them: %q, want /dev/null (1:3) twice", got)
	}
	c.Signal(syscall.SIGKILL, false)
	c.Wait()
}
