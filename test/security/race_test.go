package security

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// pairSwapper exchanges several pairs in turn, on one thread.
func swapPairs(t testing.TB, pairs [][2]string) *swapper {
	s := &swapper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			for _, p := range pairs {
				select {
				case <-s.stop:
					return
				default:
				}
				if err := unix.Renameat2(unix.AT_FDCWD, p[0], unix.AT_FDCWD, p[1], unix.RENAME_EXCHANGE); err == nil {
					s.swaps.Add(1)
				}
			}
		}
	}()
	t.Cleanup(s.halt)
	return s
}

// checkEmpty reports anything the runtime created in dir, a host
// directory outside the container.
func checkEmpty(e *env, dir string) {
	e.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		e.vulnf("host directory %s: %v", dir, err)
		return
	}
	for _, ent := range ents {
		e.vulnf("the runtime created %s on the host", filepath.Join(dir, ent.Name()))
	}
	for _, m := range hostMountsUnder(dir) {
		e.vulnf("the runtime mounted on the host at %s", m)
	}
}

// hostMountsUnder lists this mount namespace's mount points under dir.
func hostMountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// TestCVE_2021_30465: a volume shared with an attacker, who swaps a mount
// destination inside it with a symlink (renameat2 RENAME_EXCHANGE) between
// the runtime's check and its mount(2), so that the mount lands outside
// the rootfs. The victim mounts the volume at /vol and eight tmpfs (mode
// 711, to find them) at /vol/m0..m7; the attacker exchanges each mI with a
// symlink to a host directory. Every tmpfs must end up inside the
// container (wherever the symlink resolves in the root), none outside, and
// the host directory must stay untouched.
func TestCVE_2021_30465(t *testing.T) {
	runtimes(t, func(e *env) {
		const k = 8
		b := newBundle(t, "cat", "/proc/self/mountinfo")
		vol := filepath.Join(b.dir, "vol")
		host := filepath.Join(t.TempDir(), "host-target")
		os.MkdirAll(host, 0o755)
		b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
		var pairs [][2]string
		for i := 0; i < k; i++ {
			m := filepath.Join(vol, "m"+strconv.Itoa(i))
			l := filepath.Join(vol, "l"+strconv.Itoa(i))
			os.MkdirAll(m, 0o755)
			os.Symlink(host, l)
			pairs = append(pairs, [2]string{m, l})
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/vol/m" + strconv.Itoa(i), Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=711"}})
		}
		b.save(t)
		s := swapPairs(t, pairs)
		var out tally
		n := until(raceTime(e), func(int) bool {
			b.renew(t)
			res := e.runContainer(b)
			if res.code != 0 {
				out.refuse(res.stderr)
				return true
			}
			out.ran++
			if got := strings.Count(res.stdout, "mode=711"); got != k {
				e.vulnf("%d of %d tmpfs mounts are in the container; the others landed outside the rootfs:\n%s", got, k, res.stdout)
				return false
			}
			return true
		})
		s.halt()
		checkEmpty(e, host)
		e.Logf("%d containers, %d swaps: %v", n, s.swaps.Load(), &out)
	})
}

// TestCVE_2024_45310: runc created missing mount destinations with
// os.MkdirAll, following symlinks a shared-volume attacker swapped in, and
// so made empty directories and files on the host. The victim mounts the
// volume at /vol and tmpfs and file binds at /vol/a/newI (missing); the
// attacker exchanges /vol/a with a symlink to a host directory, which must
// stay empty.
func TestCVE_2024_45310(t *testing.T) {
	runtimes(t, func(e *env) {
		b := newBundle(t, "true")
		vol := filepath.Join(b.dir, "vol")
		host := filepath.Join(t.TempDir(), "host-target")
		os.MkdirAll(host, 0o755)
		os.MkdirAll(filepath.Join(vol, "a"), 0o755)
		os.Symlink(host, filepath.Join(vol, "a-link"))
		file := filepath.Join(b.dir, "file")
		os.WriteFile(file, []byte("x"), 0o644)
		b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
		for i := 0; i < 4; i++ {
			b.spec.Mounts = append(b.spec.Mounts,
				specs.Mount{Destination: "/vol/a/dir" + strconv.Itoa(i) + "/sub", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/vol/a/file" + strconv.Itoa(i), Type: "bind", Source: file, Options: []string{"bind", "ro"}})
		}
		b.save(t)
		s := swap(t, filepath.Join(vol, "a"), filepath.Join(vol, "a-link"))
		var out tally
		n := until(raceTime(e), func(int) bool {
			b.renew(t)
			// Fresh destinations each time: the runtime has to create them.
			os.RemoveAll(filepath.Join(vol, "a-tmp"))
			res := e.runContainer(b)
			if res.code != 0 {
				out.refuse(res.stderr)
			} else {
				out.ran++
			}
			for _, d := range []string{"a", "a-link"} {
				if fi, err := os.Lstat(filepath.Join(vol, d)); err == nil && fi.IsDir() {
					ents, _ := os.ReadDir(filepath.Join(vol, d))
					for _, ent := range ents {
						os.RemoveAll(filepath.Join(vol, d, ent.Name()))
					}
				}
			}
			return !e.Failed()
		})
		s.halt()
		checkEmpty(e, host)
		e.Logf("%d containers, %d swaps: %v", n, s.swaps.Load(), &out)
	})
}

// imageDev drops the spec's /dev mounts but devpts, so the container's
// /dev is the image's own directory, as an attacker's image can have it.
func imageDev(t testing.TB, b *bundle) {
	var ms []specs.Mount
	for _, m := range b.spec.Mounts {
		if m.Destination == "/dev" || m.Destination == "/dev/shm" || m.Destination == "/dev/mqueue" {
			continue
		}
		ms = append(ms, m)
	}
	b.spec.Mounts = ms
	os.MkdirAll(filepath.Join(b.rootfs(), "dev", "pts"), 0o755)
	b.save(t)
}

// maskedFiles are masked paths that are files on this kernel.
func maskedFiles(s *specs.Spec) []string {
	var out []string
	for _, p := range s.Linux.MaskedPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

// checkMasked checks `probe fs` output for the masked files: each must be
// the null device (1:3), not the file a symlinked /dev/null pointed to.
func checkMasked(e *env, files []string, out string) {
	e.Helper()
	for _, f := range files {
		l := ""
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, f+" ") {
				l = line
			}
		}
		if !strings.Contains(l, "mode=020") || !strings.HasSuffix(l, "rdev=1:3") {
			e.vulnf("masked %s is not the null device: %q", f, l)
		}
	}
}

func coreSum(t testing.TB) string {
	b, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCVE_2025_31133: runc masked files by bind-mounting the container's
// /dev/null over them without checking it, so an image (or a racing
// container) making /dev/null a symlink to /proc/sys/kernel/core_pattern
// got that file bind-mounted writable in place of a masked one. With the
// image's own /dev, /dev/null is a symlink (then, racing, exchanged with a
// real null device): masked files must be the null device or the
// container must not start, and the host's core_pattern must not change.
func TestCVE_2025_31133(t *testing.T) {
	before := coreSum(t)
	defer func() {
		if after := coreSum(t); after != before {
			t.Errorf("host core_pattern changed to %q; restoring %q", after, before)
			os.WriteFile("/proc/sys/kernel/core_pattern", []byte(before), 0)
		}
	}()
	runtimes(t, func(e *env) {
		b := newBundle(t)
		imageDev(t, b)
		files := maskedFiles(b.spec)
		b.spec.Process.Args = append([]string{"/probe", "fs"}, files...)
		b.save(t)
		null := filepath.Join(b.rootfs(), "dev", "null")
		link := filepath.Join(b.rootfs(), "dev", "null-link")
		for _, target := range []string{"/proc/sys/kernel/core_pattern", "../proc/sys/kernel/core_pattern", "/etc/passwd"} {
			os.Remove(null)
			os.Symlink(target, null)
			b.renew(t)
			res := e.runContainer(b)
			if res.code != 0 {
				e.Logf("/dev/null -> %s refused: %s", target, strings.TrimSpace(res.stderr))
				continue
			}
			checkMasked(e, files, res.stdout)
		}
		// The race: /dev/null flips between a real null device and the link.
		os.Remove(null)
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			e.fatalf("mknod: %v", err)
		}
		os.Symlink("/proc/sys/kernel/core_pattern", link)
		s := swap(t, null, link)
		var out tally
		n := until(raceTime(e), func(int) bool {
			b.renew(t)
			res := e.runContainer(b)
			if res.code != 0 {
				out.refuse(res.stderr)
				return true
			}
			out.ran++
			checkMasked(e, files, res.stdout)
			return !e.Failed()
		})
		s.halt()
		e.Logf("%d containers, %d swaps: %v", n, s.swaps.Load(), &out)
	})
}
