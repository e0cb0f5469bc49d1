package security

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupParent holds the cgroups of every test container.
const cgroupParent = "railcar-security-test"

var (
	railcarBin  string // the CLI under test
	shimBin     string // the shim under test
	probeBin    string // test/security/probe, static
	buildErr    error
	repoRoot    string
	runcBin     = "/opt/railcar-test/bin/runc"
	busyboxPath = "/bin/busybox"
	idCounter   atomic.Int64
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "railcar-security-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if p := os.Getenv("RAILCAR_RUNC"); p != "" {
		runcBin = p
	}
	buildErr = build(tmp)
	code := m.Run()
	removeCgroupParent()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// build makes the binaries under test: $RAILCAR_BINARY and
// $RAILCAR_SHIM_BINARY when set, else fresh builds with seccomp support,
// and the static probe.
func build(tmp string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	gobuild := func(out, pkg string, cgo bool, tags ...string) error {
		args := []string{"build", "-trimpath", "-o", out}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if cgo {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v: %s", pkg, err, b)
		}
		return nil
	}
	probeBin = filepath.Join(tmp, "probe")
	if err := gobuild(probeBin, "./test/security/probe", false); err != nil {
		return err
	}
	if railcarBin = os.Getenv("RAILCAR_BINARY"); railcarBin == "" {
		railcarBin = filepath.Join(tmp, "railcar")
		if err := gobuild(railcarBin, "./cmd/railcar", true, "seccomp"); err != nil {
			return err
		}
	}
	if shimBin = os.Getenv("RAILCAR_SHIM_BINARY"); shimBin == "" {
		// The shim re-executes itself: give it its real name.
		shimBin = filepath.Join(tmp, "containerd-shim-railcar-v2")
		if err := gobuild(shimBin, "./cmd/containerd-shim-railcar-v2", true, "seccomp"); err != nil {
			return err
		}
	}
	return nil
}

// missing skips the test with reason, or fails it when
// RAILCAR_REQUIRE_INTEGRATION is set.
func missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("RAILCAR_REQUIRE_INTEGRATION") != "" {
		t.Fatal("missing prerequisite: " + reason)
	}
	t.Skip("missing prerequisite: " + reason + " (set RAILCAR_REQUIRE_INTEGRATION=1 to fail instead)")
}

// integration checks what every test needs: root, busybox, the binaries.
func integration(t testing.TB) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("no binaries under test: %v", buildErr)
	}
	if os.Geteuid() != 0 {
		missing(t, "root")
	}
	if !staticBinary(busyboxPath) {
		missing(t, "a static "+busyboxPath+" (Debian's busybox-static)")
	}
}

func staticBinary(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// raceTime is how long a racing attack runs against rt.
func raceTime(rt *env) time.Duration {
	d := durationEnv("RAILCAR_RACE_TIME", 10*time.Second)
	if rt.yardstick {
		if y := durationEnv("RAILCAR_YARDSTICK_RACE_TIME", 3*time.Second); y < d {
			d = y
		}
	}
	return d
}

func durationEnv(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return def
}

// env is one runtime under attack within a test: railcar, or runc as the
// yardstick. Its vulnf fails the test for railcar and only reports for
// runc; its fatalf stops the subtest (a skip for the yardstick).
type env struct {
	*testing.T
	name      string
	bin       string
	root      string
	yardstick bool
}

// vulnf reports that the attack worked.
func (e *env) vulnf(format string, args ...any) {
	e.Helper()
	msg := fmt.Sprintf(format, args...)
	if e.yardstick {
		e.Logf("yardstick %s is VULNERABLE (reported, not a failure): %s", e.name, msg)
		return
	}
	e.Errorf("%s is VULNERABLE: %s", e.name, msg)
}

// failf reports a wrong behaviour that is not an exploit: a failure for
// railcar, a log line for the yardstick.
func (e *env) failf(format string, args ...any) {
	e.Helper()
	if e.yardstick {
		e.Logf("yardstick %s differs (reported, not a failure): %s", e.name, fmt.Sprintf(format, args...))
		return
	}
	e.Errorf(format, args...)
}

// fatalf stops the subtest on a setup problem.
func (e *env) fatalf(format string, args ...any) {
	e.Helper()
	if e.yardstick {
		e.Skipf("yardstick %s: "+format, append([]any{e.name}, args...)...)
	}
	e.Fatalf(format, args...)
}

// runtimes runs fn against railcar's CLI and then runc's (the yardstick).
func runtimes(t *testing.T, fn func(e *env)) {
	integration(t)
	t.Run("railcar", func(t *testing.T) {
		fn(newEnv(t, "railcar", railcarBin, false))
	})
	t.Run("runc", func(t *testing.T) {
		if _, err := os.Stat(runcBin); err != nil {
			t.Skipf("yardstick runc not installed at %s (test/setup.sh)", runcBin)
		}
		fn(newEnv(t, "runc", runcBin, true))
	})
}

func newEnv(t *testing.T, name, bin string, yardstick bool) *env {
	e := &env{T: t, name: name, bin: bin, root: t.TempDir(), yardstick: yardstick}
	t.Cleanup(func() {
		res := e.run("list", "-q")
		for _, id := range strings.Fields(res.stdout) {
			e.run("delete", "-f", id)
		}
	})
	return e
}

// result is one runtime invocation.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs the runtime with the env's --root (a minute at most).
func (e *env) run(args ...string) result {
	return e.runWith(nil, args...)
}

func (e *env) runWith(setup func(*exec.Cmd), args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"--root", e.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if setup != nil {
		setup(cmd)
	}
	err := cmd.Run()
	res := result{args: append([]string{e.name}, args...), stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		res.code = -1
		res.stderr += err.Error()
	}
	return res
}

// ok runs the runtime and stops the subtest unless it succeeds.
func (e *env) ok(args ...string) result {
	e.Helper()
	res := e.run(args...)
	if res.code != 0 {
		e.fatalf("%v", res)
	}
	return res
}

// bundle is a bundle directory with a busybox rootfs holding the probe at
// /probe.
type bundle struct {
	dir  string
	id   string
	spec *specs.Spec
}

func (b *bundle) rootfs() string { return filepath.Join(b.dir, "rootfs") }

func newID(t testing.TB) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), idCounter.Add(1))
}

// newBundle makes a bundle running args with runc's default spec.
func newBundle(t testing.TB, args ...string) *bundle {
	t.Helper()
	dir := t.TempDir()
	b := &bundle{dir: dir, id: newID(t), spec: defaultSpec(args...)}
	b.spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + b.id
	makeRootfs(t, b.rootfs())
	b.save(t)
	return b
}

// renew gives the bundle a fresh container id (and cgroup).
func (b *bundle) renew(t testing.TB) {
	b.id = newID(t)
	b.spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + b.id
	b.save(t)
}

func (b *bundle) save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// defaultSpec is what `runc spec` writes, without a terminal.
func defaultSpec(args ...string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "sec",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// makeRootfs fills dir with busybox, its applets, the probe and the usual
// directories.
func makeRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	copyFile(t, busyboxPath, filepath.Join(dir, "bin", "busybox"))
	copyFile(t, probeBin, filepath.Join(dir, "probe"))
	for _, name := range []string{"sh", "cat", "ls", "sleep", "echo", "mount", "stat", "true", "grep", "ln", "rm", "mkdir", "pwd", "readlink"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\n"), 0o644)
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// runContainer runs the bundle in the foreground to completion.
func (e *env) runContainer(b *bundle) result {
	return e.run("run", "--bundle", b.dir, b.id)
}

// create creates the bundle's container (deleted at the end of the test)
// with its stdout going to out (nil: a file of its own). The container
// keeps its stdio open, so it gets files, never pipes a caller would wait
// on; the runtime's own errors are read back from the stderr file.
func (e *env) create(b *bundle, out *os.File, extra ...string) result {
	e.Helper()
	dir := e.TempDir()
	if out == nil {
		var err error
		if out, err = os.Create(filepath.Join(dir, "stdout")); err != nil {
			e.Fatal(err)
		}
		defer out.Close()
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		e.Fatal(err)
	}
	defer errf.Close()
	args := append(append([]string{"create", "--bundle", b.dir}, extra...), b.id)
	res := e.runWith(func(c *exec.Cmd) { c.Stdout, c.Stderr = out, errf }, args...)
	data, _ := os.ReadFile(errf.Name())
	res.stderr = string(data)
	id := b.id
	e.Cleanup(func() { e.run("delete", "-f", id) })
	return res
}

// start creates and starts the bundle's container, deleted at the end of
// the test.
func (e *env) start(b *bundle) {
	e.Helper()
	if res := e.create(b, nil); res.code != 0 {
		e.fatalf("%v", res)
	}
	e.ok("start", b.id)
}

func removeCgroupParent() {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		os.Remove(filepath.Join("/sys/fs/cgroup", cgroupParent))
		return
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), cgroupParent))
		os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), cgroupParent))
	}
}

// vulnLines returns the probe's "VULN ..." lines.
func vulnLines(out string) []string {
	var v []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "VULN ") {
			v = append(v, strings.TrimPrefix(l, "VULN "))
		}
	}
	return v
}

// field returns the value of "key=value" in the probe's output.
func field(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// until runs fn repeatedly until d has passed (at least once) and returns
// how many times it ran. fn returns false to stop early.
func until(d time.Duration, fn func(i int) bool) int {
	deadline := time.Now().Add(d)
	i := 0
	for {
		i++
		if !fn(i) || !time.Now().Before(deadline) {
			return i
		}
	}
}

// tally counts the outcomes of a racing loop: runs that went through and
// refusals by reason.
type tally struct {
	ran     int
	refused map[string]int
}

func (t *tally) refuse(stderr string) {
	if t.refused == nil {
		t.refused = map[string]int{}
	}
	r := strings.TrimSpace(stderr)
	if i := strings.LastIndex(r, "\n"); i >= 0 {
		r = r[i+1:]
	}
	if len(r) > 200 {
		r = r[len(r)-200:]
	}
	t.refused[r]++
}

func (t *tally) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ran", t.ran)
	for r, n := range t.refused {
		fmt.Fprintf(&b, "; %d refused: %s", n, r)
	}
	return b.String()
}
