package security

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const procMagic = "0x9fa0"

// swapper is the attacker of the racing CVEs: a process with write access
// to a volume the victim container uses (a second container in the
// original exploits) that exchanges two of its entries as fast as it can.
// It runs in the test process: what the runtime sees is the same.
type swapper struct {
	stop  chan struct{}
	done  chan struct{}
	swaps atomic.Int64
}

// swap exchanges a and b (renameat2 RENAME_EXCHANGE) until stopped.
func swap(t testing.TB, a, b string) *swapper {
	s := &swapper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err == nil {
				s.swaps.Add(1)
			}
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *swapper) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// fakeProc makes a directory that looks like the files a runtime writes in
// /proc, each holding "fake".
func fakeProc(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	for _, f := range []string{"self/attr/exec", "self/attr/apparmor/exec", "self/oom_score_adj", "self/setgroups",
		"sys/kernel/domainname", "sys/kernel/hostname", "sys/kernel/shm_rmid_forced", "sys/kernel/core_pattern"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("fake\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return files
}

// checkFake reports every fake file the runtime wrote to.
func checkFake(e *env, files []string) {
	e.Helper()
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && string(b) != "fake\n" {
			e.vulnf("the runtime wrote %q to the fake %s instead of procfs", b, f)
		}
	}
}

// procWrites makes the spec ask for writes into /proc: a sysctl (through
// /proc/sys) and oomScoreAdj (through /proc/self).
func procWrites(s *specs.Spec) {
	s.Linux.Sysctl = map[string]string{"kernel.domainname": "railcar-sec"}
	adj := 100
	s.Process.OOMScoreAdj = &adj
}

// checkProcOutput checks `probe fs /proc` and `cat
// /proc/sys/kernel/domainname` output of a container that did start.
func checkProcOutput(e *env, what, out string) {
	e.Helper()
	if !strings.Contains(out, "/proc magic="+procMagic+" ") {
		e.vulnf("%s: the container's /proc is not procfs: %q", what, out)
	}
	if !strings.Contains(out, "railcar-sec") {
		e.vulnf("%s: the sysctl did not reach procfs: %q", what, out)
	}
}

const procScript = "/probe fs /proc; cat /proc/sys/kernel/domainname"

// TestCVE_2019_16884: a bind mount over /proc (an image volume in the
// original) made runc write the AppArmor label into a fake
// /proc/self/attr/exec. The runtime must refuse anything but procfs on
// /proc, or at least never write into the fake.
func TestCVE_2019_16884(t *testing.T) {
	runtimes(t, func(e *env) {
		for _, typ := range []string{"bind", "tmpfs"} {
			b := newBundle(t, "sh", "-c", procScript)
			fake := filepath.Join(b.dir, "fakeproc")
			files := fakeProc(t, fake)
			procWrites(b.spec)
			m := specs.Mount{Destination: "/proc", Type: "bind", Source: fake, Options: []string{"rbind", "rw"}}
			if typ == "tmpfs" {
				m = specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"}
			}
			b.spec.Mounts = append(b.spec.Mounts, m)
			b.save(t)
			res := e.runContainer(b)
			if res.code == 0 {
				checkProcOutput(e, typ+" over /proc", res.stdout)
			} else {
				e.Logf("%s over /proc refused: %s", typ, strings.TrimSpace(res.stderr))
			}
			checkFake(e, files)
		}
	})
}

// TestCVE_2023_28642: the image's /proc was a symlink, so procfs went
// elsewhere and runc's writes to /proc/self/attr missed it. With /proc a
// symlink to a fake directory, the runtime must refuse or mount and write
// through procfs only.
func TestCVE_2023_28642(t *testing.T) {
	runtimes(t, func(e *env) {
		for _, target := range []string{"/fakeproc", "fakeproc", "../../fakeproc"} {
			b := newBundle(t, "sh", "-c", procScript)
			files := fakeProc(t, filepath.Join(b.rootfs(), "fakeproc"))
			os.Remove(filepath.Join(b.rootfs(), "proc"))
			if err := os.Symlink(target, filepath.Join(b.rootfs(), "proc")); err != nil {
				t.Fatal(err)
			}
			procWrites(b.spec)
			b.save(t)
			res := e.runContainer(b)
			if res.code == 0 {
				checkProcOutput(e, "/proc -> "+target, res.stdout)
			} else {
				e.Logf("/proc -> %s refused: %s", target, strings.TrimSpace(res.stderr))
			}
			checkFake(e, files)
		}
	})
}

// TestCVE_2023_27561: a mount destination that is a symlink into /proc
// (the image's /evil -> /proc) let a bind mount cover /proc (the
// regression of CVE-2019-19921 in runc 1.0.0-rc95..1.1.4). The runtime
// must refuse, or keep /proc procfs and write nothing into the fake.
func TestCVE_2023_27561(t *testing.T) {
	runtimes(t, func(e *env) {
		for _, target := range []string{"/proc", "../proc", "/proc/self/attr", "/proc/sys/kernel"} {
			b := newBundle(t, "sh", "-c", procScript)
			fake := filepath.Join(b.dir, "fakeproc")
			files := fakeProc(t, fake)
			src := fake
			if target != "/proc" && target != "../proc" {
				src = filepath.Join(fake, strings.TrimPrefix(target, "/proc/"))
			}
			if err := os.Symlink(target, filepath.Join(b.rootfs(), "evil")); err != nil {
				t.Fatal(err)
			}
			procWrites(b.spec)
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/evil", Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
			b.save(t)
			res := e.runContainer(b)
			if res.code == 0 {
				checkProcOutput(e, "/evil -> "+target, res.stdout)
			} else {
				e.Logf("/evil -> %s refused: %s", target, strings.TrimSpace(res.stderr))
			}
			checkFake(e, files)
		}
	})
}

// TestCVE_2019_19921: two containers share a volume; the attacker swaps a
// directory in it with a symlink to /proc while the victim is created, so
// that the victim's bind mount lands on /proc. The victim's rootfs is the
// shared volume here; the attacker exchanges rootfs/evil (a directory) and
// rootfs/evil-link (-> /proc) for the race time while victims are created.
func TestCVE_2019_19921(t *testing.T) {
	runtimes(t, func(e *env) {
		b := newBundle(t, "sh", "-c", procScript)
		fake := filepath.Join(b.dir, "fakeproc")
		files := fakeProc(t, fake)
		os.Mkdir(filepath.Join(b.rootfs(), "evil"), 0o755)
		os.Symlink("/proc", filepath.Join(b.rootfs(), "evil-link"))
		procWrites(b.spec)
		b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/evil", Type: "bind", Source: fake, Options: []string{"rbind", "rw"}})
		b.save(t)
		s := swap(t, filepath.Join(b.rootfs(), "evil"), filepath.Join(b.rootfs(), "evil-link"))
		var out tally
		n := until(raceTime(e), func(int) bool {
			b.renew(t)
			res := e.runContainer(b)
			if res.code == 0 {
				out.ran++
				checkProcOutput(e, "racing /evil", res.stdout)
			} else {
				out.refuse(res.stderr)
			}
			return !e.Failed()
		})
		s.halt()
		checkFake(e, files)
		e.Logf("%d containers, %d swaps: %v", n, s.swaps.Load(), &out)
	})
}
