package security

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

// scanWhileExecing starts a container whose init is `probe scan` for the
// race time, runs `exec` of args in it again and again meanwhile, and
// returns the probe's report.
func scanWhileExecing(e *env, b *bundle, args ...string) (report string, execs int) {
	e.Helper()
	d := raceTime(e)
	b.spec.Process.Args = []string{"/probe", "scan", (d + time.Second).String()}
	b.save(e)
	out, err := os.Create(filepath.Join(e.TempDir(), "scan.out"))
	if err != nil {
		e.Fatal(err)
	}
	defer out.Close()
	if res := e.create(b, out); res.code != 0 {
		e.fatalf("%v", res)
	}
	e.ok("start", b.id)
	failed := 0
	execs = until(d, func(int) bool {
		if r := e.run(append([]string{"exec", b.id}, args...)...); r.code != 0 {
			failed++
		}
		return true
	})
	waitStopped(e, b.id, d+10*time.Second)
	data, _ := os.ReadFile(out.Name())
	e.Logf("%d execs (%d failed) during %v; probe: %s", execs, failed, d, strings.TrimSpace(string(data)))
	return string(data), execs
}

// waitStopped polls the runtime's state until the container has stopped.
func waitStopped(e *env, id string, d time.Duration) {
	e.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r := e.run("state", id)
		if r.code != 0 || strings.Contains(r.stdout, `"stopped"`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.fatalf("container %s did not stop within %v", id, d)
}

// TestCVE_2016_9962: runc's init joined the container's namespaces while
// dumpable, so a process in the container could ptrace it or open its
// /proc/PID/fd entries and reach the host fds it held. The container's
// init scans /proc for setup processes of `exec` while the test execs in a
// loop; none may be dumpable to it.
func TestCVE_2016_9962(t *testing.T) {
	runtimes(t, func(e *env) {
		b := newBundle(t)
		report, _ := scanWhileExecing(e, b, "/bin/true")
		if !strings.Contains(report, "seen ") {
			e.fatalf("probe did not finish: %q", report)
		}
		for _, v := range vulnLines(report) {
			if strings.HasPrefix(v, "fd-access") {
				e.vulnf("a container process read a setup process's fds: %s", v)
			}
		}
	})
	shims(t, func(s *shimEnv) {
		for _, v := range vulnLines(s.scanWhileExecing("/bin/true")) {
			if strings.HasPrefix(v, "fd-access") {
				s.vulnf("a container process read a setup process's fds: %s", v)
			}
		}
	})
}

// TestCVE_2019_5736: a container process opened /proc/PID/exe of the
// runtime's process that had joined it, and overwrote the runtime binary
// on the host once it exited. railcar's init runs from a detached
// read-only overlayfs mount of the binary (or a sealed memfd) and is not
// dumpable. Three ways in: the setup processes of `exec`; a workload that
// is the runtime binary itself (an image whose /bin/evil is
// "#!/proc/self/exe"); and, for railcar, PID 1 in rc-init mode with
// CAP_SYS_PTRACE. The host binary must be unchanged.
func TestCVE_2019_5736(t *testing.T) {
	runtimes(t, func(e *env) {
		sum := fileSum(e, e.bin)
		defer func() {
			if got := fileSum(e, e.bin); got != sum {
				e.vulnf("the runtime binary %s changed on the host", e.bin)
			}
		}()
		check := func(report string) {
			e.Helper()
			if !strings.Contains(report, "seen ") {
				e.fatalf("probe did not finish: %q", report)
			}
			for _, v := range vulnLines(report) {
				if strings.HasPrefix(v, "exe-") {
					e.vulnf("a container process could open the runtime binary for writing: %s", v)
				}
			}
		}
		e.Run("exec", func(t *testing.T) {
			b := newBundle(t)
			report, _ := scanWhileExecing(sub(e, t), b, "/bin/true")
			check(report)
		})
		e.Run("proc-self-exe", func(t *testing.T) {
			b := newBundle(t)
			addLibs(t, b.rootfs(), e.bin)
			os.WriteFile(filepath.Join(b.rootfs(), "bin", "evil"), []byte("#!/proc/self/exe\n"), 0o755)
			report, _ := scanWhileExecing(sub(e, t), b, "/bin/evil")
			check(report)
		})
		if e.yardstick {
			return
		}
		e.Run("rc-init", func(t *testing.T) {
			b := newBundle(t)
			b.spec.Annotations = map[string]string{linux.InitAnnotation: "true"}
			all := []string{"CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_KILL"}
			b.spec.Process.Capabilities.Bounding = all
			b.spec.Process.Capabilities.Effective = all
			b.spec.Process.Capabilities.Permitted = all
			report, _ := scanWhileExecing(sub(e, t), b, "/bin/true")
			check(report)
		})
	})
	shims(t, func(s *shimEnv) {
		sum := fileSum(s.env, s.binary())
		for _, v := range vulnLines(s.scanWhileExecing("/bin/true")) {
			if strings.HasPrefix(v, "exe-") {
				s.vulnf("a container process could open the runtime binary for writing: %s", v)
			}
		}
		if fileSum(s.env, s.binary()) != sum {
			s.vulnf("the shim binary %s changed on the host", s.binary())
		}
	})
}

// sub is e for a subtest.
func sub(e *env, t *testing.T) *env {
	s := *e
	s.T = t
	return &s
}

func fileSum(e *env, path string) [32]byte {
	e.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.Fatal(err)
	}
	return sha256.Sum256(b)
}

// addLibs copies the shared libraries (and the loader) of bins into rootfs,
// so that the runtime binary itself can run in the container.
func addLibs(t testing.TB, rootfs string, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		out, err := exec.Command("ldd", bin).Output()
		if err != nil {
			return // static
		}
		for _, l := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(l) {
				if !strings.HasPrefix(f, "/") {
					continue
				}
				dst := filepath.Join(rootfs, f)
				os.MkdirAll(filepath.Dir(dst), 0o755)
				if b, err := os.ReadFile(f); err == nil {
					os.WriteFile(dst, b, 0o755)
				}
			}
		}
	}
}

// TestCVE_2022_29162: `runc exec --cap` put the added capabilities into
// the inheritable set (and containerd's default spec listed its defaults
// as inheritable, CVE-2022-24769), so a non-root process exec'ing a file
// with inheritable file capabilities gained them as permitted and
// effective. The attack: the rootfs holds /bin/busybox-caps, a copy of
// busybox whose security.capability gives fI = every capability, fP =
// none and the effective bit; uid 1000, without no_new_privs (which would
// clamp what execve may add), execs it and it reads its own
// /proc/self/status. A control whose spec lists the bounding set as
// inheritable must gain exactly that (file capabilities work here); the
// default spec as the init, `exec --user 1000:1000` and `exec --user
// 1000:1000 --cap CAP_NET_RAW --cap CAP_SYS_ADMIN` must gain nothing:
// CapPrm, CapEff, CapInh and CapAmb zero. Root's `exec --cap` must not get
// inheritable or ambient capabilities either. The shim: `ctr run` and `ctr
// task exec` of the same file, bind-mounted without nosuid, as 1000:1000
// with --allow-new-privs.
func TestCVE_2022_29162(t *testing.T) {
	runtimes(t, func(e *env) {
		b := newBundle(t, capsBinary, "cat", "/proc/self/status")
		fileInh := capsFile(e.T, filepath.Join(b.rootfs(), capsBinary))
		bounding := capMask(e, b.spec.Process.Capabilities.Bounding)
		b.spec.Process.User = specs.User{UID: 1000, GID: 1000}
		b.spec.Process.NoNewPrivileges = false

		// The control: what the vulnerable runtimes did implicitly.
		b.spec.Process.Capabilities.Inheritable = b.spec.Process.Capabilities.Bounding
		b.save(t)
		res := e.runContainer(b)
		if res.code != 0 {
			e.fatalf("control: %v", res)
		}
		if got := statusMask(res.stdout, "CapPrm"); got != bounding&fileInh || statusMask(res.stdout, "CapEff") != got {
			e.fatalf("control: inheritable %#x and the file's fI %#x gave CapPrm %#x CapEff %#x, want %#x: file capabilities not honoured, the attack cannot be shown",
				bounding, fileInh, got, statusMask(res.stdout, "CapEff"), bounding&fileInh)
		}
		e.Logf("control (spec inheritable = bounding): uid 1000 exec of %s gained CapPrm=CapEff=%#x", capsBinary, bounding&fileInh)

		gained := func(what, status string, would uint64) {
			e.Helper()
			for _, f := range []string{"CapPrm", "CapEff", "CapInh", "CapAmb"} {
				if v := statusMask(status, f); v != 0 {
					e.vulnf("%s: %s = %#x, want none (inheritable = bounding would give %#x)", what, f, v, would)
				}
			}
			if !e.Failed() {
				e.Logf("%s: CapPrm, CapEff, CapInh, CapAmb zero (inheritable = bounding would give %#x)", what, would)
			}
		}
		b.renew(t)
		b.spec.Process.Capabilities.Inheritable = nil
		b.save(t)
		if res = e.runContainer(b); res.code != 0 {
			e.fatalf("%v", res)
		}
		gained("init "+capsBinary+" as 1000", res.stdout, bounding&fileInh)

		b.renew(t)
		b.spec.Process.User = specs.User{}
		b.spec.Process.Args = []string{"/bin/sleep", "60"}
		b.save(t)
		e.start(b)
		extra := capMask(e, []string{"CAP_NET_RAW", "CAP_SYS_ADMIN"})
		for _, c := range []struct {
			args  []string
			would uint64
		}{
			{[]string{"--user", "1000:1000"}, bounding},
			{[]string{"--user", "1000:1000", "--cap", "CAP_NET_RAW", "--cap", "CAP_SYS_ADMIN"}, bounding | extra},
		} {
			args := append(append([]string{"exec"}, c.args...), b.id, capsBinary, "cat", "/proc/self/status")
			res := e.ok(args...)
			gained("exec "+strings.Join(c.args, " ")+" "+capsBinary, res.stdout, c.would&fileInh)
		}
		for _, args := range [][]string{
			{"exec", b.id, "cat", "/proc/1/status"},
			{"exec", "--cap", "CAP_NET_RAW", "--cap", "CAP_SYS_ADMIN", b.id, "cat", "/proc/self/status"},
		} {
			res := e.ok(args...)
			for _, f := range []string{"CapInh", "CapAmb"} {
				if v := statusField(res.stdout, f); v != "0000000000000000" {
					e.vulnf("%s: %s = %s, want none", strings.Join(args, " "), f, v)
				}
			}
		}
	})
	shims(t, func(s *shimEnv) {
		bin := filepath.Join(s.TempDir(), "busybox-caps")
		copyFile(s, busyboxPath, bin)
		fileInh := capsFile(s.T, bin)
		flags := []string{"--user", "1000:1000", "--allow-new-privs",
			"--mount", "type=bind,src=" + bin + ",dst=/busybox-caps,options=rbind:ro"}
		check := func(what string, res result) {
			s.Helper()
			if res.code != 0 {
				s.fatalf("%v", res)
			}
			would := statusMask(res.stdout, "CapBnd") & fileInh
			for _, f := range []string{"CapPrm", "CapEff", "CapInh", "CapAmb"} {
				if v := statusMask(res.stdout, f); v != 0 {
					s.vulnf("%s: %s = %#x, want none (inheritable = bounding would give %#x)", what, f, v, would)
				}
			}
			if !s.Failed() {
				s.Logf("%s: CapPrm, CapEff, CapInh, CapAmb zero (inheritable = bounding would give %#x)", what, would)
			}
		}
		// File capabilities count only on a mount without nosuid.
		res := s.run(newID(s), flags, "sh", "-c", "/busybox-caps cat /proc/self/status; grep ' /busybox-caps ' /proc/self/mountinfo")
		if l := strings.TrimSpace(res.stdout[strings.LastIndex(strings.TrimSpace(res.stdout), "\n")+1:]); !strings.Contains(l, " /busybox-caps ") || strings.Contains(l, "nosuid") {
			s.fatalf("/busybox-caps is not on a mount that honours file capabilities: %q", l)
		}
		check("ctr run --user 1000:1000 /busybox-caps", res)
		id := newID(s)
		s.start(id, flags, "sleep", "60")
		check("ctr task exec --user 1000:1000 /busybox-caps",
			s.ctr("task", "exec", "--exec-id", "caps", "--user", "1000:1000", id, "/busybox-caps", "cat", "/proc/self/status"))
	})
}

// capsBinary is the copy of busybox with file capabilities; a name
// starting with "busybox" makes it run its first argument as the applet.
const capsBinary = "/bin/busybox-caps"

// capsFile makes path a copy of busybox (unless it exists) with the file
// capabilities fP = none, fI = every capability the kernel knows and the
// effective bit (VFS_CAP_REVISION_2), and returns fI.
func capsFile(t testing.TB, path string) uint64 {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		copyFile(t, busyboxPath, path)
	}
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(last)))
	if err != nil || n < 31 || n > 63 {
		t.Fatalf("cap_last_cap %q", last)
	}
	inh := uint64(1)<<(n+1) - 1
	// struct vfs_cap_data, little endian: magic_etc, then permitted and
	// inheritable of the low word, then of the high word.
	data := make([]byte, 20)
	binary.LittleEndian.PutUint32(data[0:], 0x02000000|0x1) // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
	binary.LittleEndian.PutUint32(data[4:], 0)
	binary.LittleEndian.PutUint32(data[8:], uint32(inh))
	binary.LittleEndian.PutUint32(data[12:], 0)
	binary.LittleEndian.PutUint32(data[16:], uint32(inh>>32))
	if err := unix.Setxattr(path, "security.capability", data, 0); err != nil {
		t.Fatalf("set file capabilities on %s: %v", path, err)
	}
	back := make([]byte, 64)
	if m, err := unix.Getxattr(path, "security.capability", back); err != nil || !bytes.Equal(back[:m], data) {
		t.Fatalf("file capabilities of %s read back as %x (%v), set %x", path, back[:max(m, 0)], err, data)
	}
	return inh
}

// capMask is the bit mask of the named capabilities.
func capMask(e *env, names []string) uint64 {
	e.Helper()
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = c
	}
	var m uint64
	for _, n := range names {
		c, ok := known[n]
		if !ok {
			e.Fatalf("unknown capability %s", n)
		}
		m |= 1 << uint(c)
	}
	return m
}

// statusMask is a capability mask of /proc/PID/status (all ones when
// absent or malformed, so that a check for zero fails).
func statusMask(status, name string) uint64 {
	v, err := strconv.ParseUint(statusField(status, name), 16, 64)
	if err != nil {
		return ^uint64(0)
	}
	return v
}

func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestCVE_2024_21626: runc leaked a host directory fd (/sys/fs/cgroup)
// into the init, and process.cwd "/proc/self/fd/7" left the workload with
// a working directory on the host. Every cwd /proc/self/fd/N, for the init
// and for exec, must fail or stay in the container, and the workload must
// hold no fd but its stdio.
func TestCVE_2024_21626(t *testing.T) {
	runtimes(t, func(e *env) {
		b := newBundle(t, "/probe", "fds")
		res := e.runContainer(b)
		if res.code != 0 {
			e.fatalf("%v", res)
		}
		for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
			var n int
			// The probe's own Go runtime holds an epoll and an eventfd.
			if strings.Contains(l, "anon_inode:[event") {
				continue
			}
			if _, err := fmt.Sscanf(l, "fd %d", &n); err == nil && n > 2 {
				e.vulnf("the workload holds a leaked fd: %s", l)
			}
		}
		escaped := func(what, out string) {
			e.Helper()
			if cwd := field(out, "cwd"); cwd != "" && (!strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "unreachable")) {
				e.vulnf("%s: working directory outside the container: %s", what, out)
			}
			if strings.Contains(field(out, "parent"), "railcar-security") || strings.Contains(out, "cgroup.procs") {
				e.vulnf("%s: host directory reachable from the working directory: %s", what, out)
			}
		}
		refused := 0
		for n := 3; n <= 12; n++ {
			b.renew(t)
			b.spec.Process.Args = []string{"/probe", "cwd"}
			b.spec.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(n)
			b.save(t)
			res := e.runContainer(b)
			if res.code != 0 {
				refused++
				continue
			}
			escaped("init cwd "+b.spec.Process.Cwd, res.stdout)
		}
		b.renew(t)
		b.spec.Process.Args = []string{"/bin/sleep", "60"}
		b.spec.Process.Cwd = "/"
		b.save(t)
		e.start(b)
		for n := 3; n <= 12; n++ {
			res := e.run("exec", "--cwd", "/proc/self/fd/"+strconv.Itoa(n), b.id, "/probe", "cwd")
			if res.code != 0 {
				refused++
				continue
			}
			escaped("exec --cwd /proc/self/fd/"+strconv.Itoa(n), res.stdout)
		}
		e.Logf("%d of 20 attempts refused", refused)
	})
	shims(t, func(s *shimEnv) {
		escaped := func(what, out string) {
			s.Helper()
			if cwd := field(out, "cwd"); cwd != "" && (!strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "unreachable")) {
				s.vulnf("%s: working directory outside the container: %s", what, out)
			}
		}
		refused := 0
		for n := 3; n <= 8; n++ {
			cwd := "/proc/self/fd/" + strconv.Itoa(n)
			res := s.run(newID(s), []string{"--cwd", cwd}, "/probe", "cwd")
			if res.code != 0 || !strings.Contains(res.stdout, "cwd") {
				refused++
				continue
			}
			escaped("init cwd "+cwd, res.stdout)
		}
		id := newID(s)
		s.start(id, nil, "sleep", "60")
		for n := 3; n <= 8; n++ {
			cwd := "/proc/self/fd/" + strconv.Itoa(n)
			res := s.ctr("task", "exec", "--exec-id", "cwd"+strconv.Itoa(n), "--cwd", cwd, id, "/probe", "cwd")
			if res.code != 0 || !strings.Contains(res.stdout, "cwd") {
				refused++
				continue
			}
			escaped("exec --cwd "+cwd, res.stdout)
		}
		s.Logf("%d of 12 attempts refused", refused)
	})
}
