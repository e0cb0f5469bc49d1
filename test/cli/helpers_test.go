package cli

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupParent holds the cgroups of every test container, so that a leak is
// easy to see and to clean.
const cgroupParent = "railcar-cli-test"

var (
	railcarBin  string // the binary under test
	buildErr    error  // why there is none
	repoRoot    string
	busyboxPath = "/bin/busybox"
	idCounter   atomic.Int64
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "railcar-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	railcarBin, buildErr = findBinary(tmp)
	code := m.Run()
	removeCgroupParent()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// findBinary returns $RAILCAR_BINARY, bin/railcar, or a fresh build.
func findBinary(tmp string) (string, error) {
	if p := os.Getenv("RAILCAR_BINARY"); p != "" {
		return filepath.Abs(p)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	if p := filepath.Join(repoRoot, "bin", "railcar"); isExecutable(p) {
		return p, nil
	}
	out := filepath.Join(tmp, "railcar")
	// The flags of `make build`.
	tags := "seccomp"
	if v, ok := os.LookupEnv("BUILDTAGS"); ok {
		tags = v
	}
	cmd := exec.Command("go", "build", "-tags", tags, "-trimpath", "-o", out, "./cmd/railcar")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build railcar: %v: %s", err, b)
	}
	return out, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// integration checks what every test here needs. A missing prerequisite
// skips the test with the reason, or fails it when
// RAILCAR_REQUIRE_INTEGRATION is set; a broken build always fails.
func integration(t *testing.T, tools ...string) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("no railcar binary: %v", buildErr)
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if !staticBinary(busyboxPath) {
		missing = append(missing, "a static "+busyboxPath+" (Debian's busybox-static)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	reason := "missing prerequisite: " + strings.Join(missing, ", ")
	if os.Getenv("RAILCAR_REQUIRE_INTEGRATION") != "" {
		t.Fatal(reason)
	}
	t.Skip(reason + " (set RAILCAR_REQUIRE_INTEGRATION=1 to fail instead)")
}

// staticBinary reports whether path is an ELF executable without an
// interpreter, one that runs in an empty rootfs.
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

// result is one railcar invocation.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("railcar %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// rc runs railcar with a state root of its own.
type rc struct {
	t    *testing.T
	root string
}

// newRC returns a runner whose containers are force-deleted when the test
// ends.
func newRC(t *testing.T) *rc {
	t.Helper()
	r := &rc{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		res := r.run("list", "-q")
		for _, id := range strings.Fields(res.stdout) {
			r.run("delete", "-f", id)
		}
	})
	return r
}

// command is railcar with the runner's --root and args.
func (r *rc) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, railcarBin, append([]string{"--root", r.root}, args...)...)
}

// run runs railcar to completion (at most a minute).
func (r *rc) run(args ...string) result {
	return r.runIn(nil, args...)
}

// runIn runs railcar with stdin.
func (r *rc) runIn(stdin []byte, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	// Files, not pipes: a detached container inherits railcar's stdio and
	// would keep a pipe open long after railcar is gone.
	out, errb := tempFile(r.t), tempFile(r.t)
	defer out.Close()
	defer errb.Close()
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	res := result{args: args, stdout: readBack(out), stderr: readBack(errb)}
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

// ok runs railcar and fails the test unless it succeeds.
func (r *rc) ok(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("%v", res)
	}
	return res
}

// fails runs railcar and fails the test unless it exits non-zero with a
// one-line "railcar: " error.
func (r *rc) fails(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code == 0 {
		r.t.Fatalf("want failure, got %v", res)
	}
	checkErrorLine(r.t, res)
	return res
}

// checkErrorLine checks runc's error convention: one line on stderr.
func checkErrorLine(t *testing.T, res result) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "railcar: ") {
		t.Errorf("want one \"railcar: ...\" line on stderr, got %q", res.stderr)
	}
}

// state returns `railcar state id`.
func (r *rc) state(id string) specs.State {
	r.t.Helper()
	res := r.ok("state", id)
	var st specs.State
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		r.t.Fatalf("state output: %v: %q", err, res.stdout)
	}
	return st
}

// waitStatus polls until the container has the status (10 s at most).
func (r *rc) waitStatus(id string, want specs.ContainerState) specs.State {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A foreground run may not have created the container yet.
		res := r.run("state", id)
		var st specs.State
		if res.code == 0 {
			if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
				r.t.Fatalf("state output: %v: %q", err, res.stdout)
			}
			if st.Status == want {
				return st
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %q, want %q (%v)", id, st.Status, want, res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newID returns a container id unique in this run.
func newID(t *testing.T) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), idCounter.Add(1))
}

// bundle is a bundle directory with a busybox rootfs and a spec made by
// `railcar spec`, adjusted for tests: no terminal, a writable rootfs and a
// cgroup under cgroupParent.
type bundle struct {
	t    *testing.T
	dir  string
	id   string
	spec *specs.Spec
}

func (b *bundle) rootfs() string { return filepath.Join(b.dir, "rootfs") }

// newBundle makes a bundle for container id running args.
func newBundle(t *testing.T, r *rc, args ...string) *bundle {
	t.Helper()
	dir := t.TempDir()
	r.ok("spec", "--bundle", dir)
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	id := newID(t)
	spec.Process.Terminal = false
	spec.Process.Args = args
	spec.Root.Readonly = false
	spec.Linux.CgroupsPath = "/" + cgroupParent + "/" + id
	b := &bundle{t: t, dir: dir, id: id, spec: &spec}
	makeRootfs(t, b.rootfs())
	b.save()
	return b
}

// save writes the spec to config.json.
func (b *bundle) save() {
	b.t.Helper()
	data, err := json.MarshalIndent(b.spec, "", "\t")
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// makeRootfs fills dir with busybox, its applets and the usual directories.
func makeRootfs(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "work", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	src, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range applets(t) {
		link := filepath.Join(dir, "bin", name)
		if name == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", link); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/work:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
		"etc/group":  "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
		"etc/secret": "secret\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var appletList []string

// applets lists busybox's applets (once).
func applets(t *testing.T) []string {
	t.Helper()
	if appletList != nil {
		return appletList
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	appletList = strings.Fields(string(out))
	return appletList
}

// runContainer runs the bundle in the foreground and returns the result.
func (r *rc) runContainer(b *bundle, extra ...string) result {
	args := append([]string{"run", "--bundle", b.dir}, extra...)
	return r.run(append(args, b.id)...)
}

// inside runs sh -c script in a fresh container of b's spec and returns its
// stdout, failing the test unless it exits 0.
func (r *rc) inside(b *bundle, script string) string {
	r.t.Helper()
	b.spec.Process.Args = []string{"sh", "-c", script}
	b.save()
	res := r.runContainer(b)
	if res.code != 0 {
		r.t.Fatalf("%v", res)
	}
	return res.stdout
}

// cgroupDirs are the directories the container's cgroup would have.
func cgroupDirs(b *bundle) []string {
	rel := strings.TrimPrefix(b.spec.Linux.CgroupsPath, "/")
	if isCgroup2() {
		return []string{filepath.Join("/sys/fs/cgroup", rel)}
	}
	var dirs []string
	for _, c := range []string{"memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset"} {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", c, rel))
	}
	return dirs
}

func isCgroup2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupFile is the path of a controller file of the container's cgroup.
func cgroupFile(b *bundle, controller, file string) string {
	rel := strings.TrimPrefix(b.spec.Linux.CgroupsPath, "/")
	if isCgroup2() {
		return filepath.Join("/sys/fs/cgroup", rel, file)
	}
	return filepath.Join("/sys/fs/cgroup", controller, rel, file)
}

func removeCgroupParent() {
	if isCgroup2() {
		os.Remove(filepath.Join("/sys/fs/cgroup", cgroupParent))
		return
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		os.Remove(filepath.Join("/sys/fs/cgroup", e.Name(), cgroupParent))
	}
}

// checkNoLeak checks that container b left nothing on the host: no state
// directory, no cgroup, no mount under the bundle, no process of its own.
// before is railcarProcesses() from before the container was made.
func (r *rc) checkNoLeak(b *bundle, before map[string]bool) {
	r.t.Helper()
	if _, err := os.Stat(filepath.Join(r.root, b.id)); !errors.Is(err, os.ErrNotExist) {
		r.t.Errorf("state directory %s left behind (%v)", filepath.Join(r.root, b.id), err)
	}
	for _, d := range cgroupDirs(b) {
		if _, err := os.Stat(d); err == nil {
			r.t.Errorf("cgroup %s left behind", d)
		}
	}
	for _, m := range mountsUnder(b.dir) {
		r.t.Errorf("mount left behind: %s", m)
	}
	for p, desc := range containerProcesses(b.id, b.dir, before) {
		r.t.Errorf("process left behind: %s %s", p, desc)
	}
}

// mountsUnder lists the host's mount points under dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// railcarProcesses returns the pids of railcar's helper processes (argv0
// railcar-init, railcar-exec, rc-init) now.
func railcarProcesses() map[string]bool {
	out := map[string]bool{}
	for pid, args := range processes() {
		if strings.HasPrefix(args[0], "railcar-") || strings.HasPrefix(args[0], "rc-init") {
			out[pid] = true
		}
	}
	return out
}

// containerProcesses lists the processes that belong to container id: in
// its cgroup, naming it on their command line, or railcar helpers that were
// not there before and work in the bundle (an init that never reached its
// cgroup). Other railcar helpers on the machine are not ours.
func containerProcesses(id, bundleDir string, before map[string]bool) map[string]string {
	out := map[string]string{}
	for pid, args := range processes() {
		line := strings.Join(args, " ")
		cg, _ := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
		cwd, _ := os.Readlink(filepath.Join("/proc", pid, "cwd"))
		root, _ := os.Readlink(filepath.Join("/proc", pid, "root"))
		inBundle := strings.HasPrefix(cwd, bundleDir) || strings.HasPrefix(root, bundleDir)
		switch {
		case strings.Contains(string(cg), id):
			out[pid] = line + " (in the cgroup)"
		case strings.Contains(line, id) && !strings.Contains(line, ".test"):
			out[pid] = line
		case (strings.HasPrefix(args[0], "railcar-") || strings.HasPrefix(args[0], "rc-init")) && !before[pid] && inBundle:
			out[pid] = line + " (new helper in the bundle)"
		}
	}
	return out
}

// alive reports whether pid runs (exists and is not a zombie waiting for
// a parent that may never reap it).
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// processes maps every pid to its argv.
func processes() map[string][]string {
	entries, _ := os.ReadDir("/proc")
	out := map[string][]string{}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		out[e.Name()] = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	}
	return out
}

// hasLine reports whether text has a line equal to want (spaces trimmed).
func hasLine(text, want string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// statusField returns a field of a /proc/PID/status text ("Uid", "CapBnd").
func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// tempFile is an unlinked file for a command's output.
func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp("", "railcar-cli-out")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Name())
	return f
}

// readBack returns what was written to f.
func readBack(f *os.File) string {
	data, _ := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	return string(data)
}
