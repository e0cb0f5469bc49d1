package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// console is a --console-socket that receives pty masters and collects
// what the containers write to them.
type console struct {
	path string
	ln   *net.UnixListener
	mu   sync.Mutex
	out  bytes.Buffer
	wg   sync.WaitGroup
}

func newConsole(t testing.TB) *console {
	t.Helper()
	c := &console{path: filepath.Join(t.TempDir(), "console.sock")}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	c.ln = ln
	go c.serve()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *console) serve() {
	for {
		conn, err := c.ln.AcceptUnix()
		if err != nil {
			return
		}
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		conn.Close()
		if err != nil {
			continue
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			continue
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		if len(fds) != 1 {
			continue
		}
		master := os.NewFile(uintptr(fds[0]), "pty-master")
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer master.Close()
			b := make([]byte, 4096)
			for {
				n, err := master.Read(b)
				c.mu.Lock()
				c.out.Write(b[:n])
				c.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

// take waits (briefly) for the masters to reach EOF and returns and resets
// what they carried.
func (c *console) take() string {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.ReplaceAll(c.out.String(), "\r", "")
	c.out.Reset()
	return s
}

// runTerminal runs the bundle with a terminal to completion and returns
// what it wrote, or the runtime's error.
func (e *env) runTerminal(b *bundle, c *console) (string, result) {
	e.Helper()
	res := e.create(b, nil, "--console-socket", c.path)
	if res.code != 0 {
		return "", res
	}
	if res = e.run("start", b.id); res.code != 0 {
		return "", res
	}
	waitStopped(e, b.id, 20*time.Second)
	e.run("delete", "-f", b.id)
	return c.take(), res
}

// checkConsole checks the output of consoleScript.
func checkConsole(e *env, what, out string) {
	e.Helper()
	l := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "/dev/console ") {
			l = line
		}
	}
	// A pty slave: a character device with a major of 136 to 143.
	if !strings.Contains(l, "mode=020") || !strings.Contains(l, "rdev=13") {
		e.vulnf("%s: /dev/console is not the pty: %q", what, l)
	}
	if strings.Contains(out, " /proc/sys/kernel/core_pattern ") || strings.Contains(out, " /etc/target ") {
		e.vulnf("%s: the console was mounted over another file:\n%s", what, out)
	}
}

const consoleScript = "/probe fs /dev/console; cat /proc/self/mountinfo"

// TestCVE_2025_52565: runc bind-mounted the pty onto /dev/console without
// checking what /dev/console was, so an image (or a racing container)
// making it a symlink to a procfs file got the mount, and a later one,
// redirected. With the image's own /dev, /dev/console is a symlink to
// /proc/sys/kernel/core_pattern (and, racing, exchanged with a plain file):
// the container must not start, or have the pty at /dev/console and
// nothing mounted over the symlink's target.
func TestCVE_2025_52565(t *testing.T) {
	before := coreSum(t)
	defer func() {
		if after := coreSum(t); after != before {
			t.Errorf("host core_pattern changed to %q; restoring %q", after, before)
			os.WriteFile("/proc/sys/kernel/core_pattern", []byte(before), 0)
		}
	}()
	runtimes(t, func(e *env) {
		c := newConsole(t)
		b := newBundle(t, "sh", "-c", consoleScript)
		b.spec.Process.Terminal = true
		imageDev(t, b)
		os.WriteFile(filepath.Join(b.rootfs(), "etc", "target"), []byte("target\n"), 0o644)
		console := filepath.Join(b.rootfs(), "dev", "console")
		for _, target := range []string{"/proc/sys/kernel/core_pattern", "../etc/target"} {
			os.Remove(console)
			os.Symlink(target, console)
			b.renew(t)
			out, res := e.runTerminal(b, c)
			if res.code != 0 {
				e.Logf("/dev/console -> %s refused: %s", target, strings.TrimSpace(res.stderr))
				continue
			}
			checkConsole(e, "/dev/console -> "+target, out)
		}
		os.Remove(console)
		os.WriteFile(console, nil, 0o666)
		link := filepath.Join(b.rootfs(), "dev", "console-link")
		os.Symlink("/proc/sys/kernel/core_pattern", link)
		s := swap(t, console, link)
		var out tally
		n := until(raceTime(e), func(int) bool {
			b.renew(t)
			o, res := e.runTerminal(b, c)
			if res.code != 0 {
				out.refuse(res.stderr)
				return true
			}
			out.ran++
			// The swapper goes on renaming after the mount, so the pty
			// may sit under either name now; what matters is that
			// nothing was mounted over the link's target.
			for _, l := range strings.Split(o, "\n") {
				if f := strings.Fields(l); len(f) > 4 && (f[4] == "/proc/sys/kernel/core_pattern" || f[4] == "/etc/target") {
					e.vulnf("racing /dev/console: mounted over %s:\n%s", f[4], o)
				}
			}
			return !e.Failed()
		})
		s.halt()
		e.Logf("%d containers, %d swaps: %v", n, s.swaps.Load(), &out)
	})
}

// TestCVE_2025_52881: with mounts shared between an attacker and the
// container, runc's writes to /proc files (LSM labels, sysctls,
// oom_score_adj) could be redirected by a bind mount that appeared on top
// of the container's procfs after runc had checked it, onto another
// procfs file such as /proc/sys/kernel/core_pattern. The target is the
// host's /proc/sys/kernel/printk_ratelimit (global, harmless, restored if
// hit); it must never change. Four ways in:
//
//   - the spec binds the target over /proc/sys/kernel/shm_rmid_forced and
//     over /proc/self/oom_score_adj and sets that sysctl and oomScoreAdj;
//   - the overmount itself: a createRuntime hook (the test binary, see
//     overmountHook), standing for the racing container that shares the
//     mounts, binds the host's target over the init's /proc/1/oom_score_adj
//     in the container's mount namespace once the rootfs is set up and
//     before the init applies oomScoreAdj;
//   - the spec binds a procfs at /proc that carries the target over
//     /proc/sys/kernel/domainname (the runtime runs in a private mount
//     namespace where the test bound it there) and sets that sysctl;
//   - racing, the bind's destination in the shared rootfs flips between a
//     file and a symlink to the sysctl's file, so that a runtime that
//     checks a path and then mounts on it ends up binding the target over
//     the sysctl.
//
// railcar must refuse the overmounted writes with an error that names the
// file. A runtime that runs while the target stays unchanged wrote
// elsewhere (runc writes oom_score_adj before the rootfs exists and
// sysctls through a procfs of its own): reported for the yardstick, a
// failure for railcar, whose defence is the refusal.
func TestCVE_2025_52881(t *testing.T) {
	const target = "/proc/sys/kernel/printk_ratelimit"
	before, err := os.ReadFile(target)
	if err != nil {
		missing(t, target+": "+err.Error())
	}
	hit := func(e *env) bool {
		e.Helper()
		if now, _ := os.ReadFile(target); !bytes.Equal(now, before) {
			e.vulnf("a procfs write of the container reached the host's %s (%q -> %q)", target, before, now)
			os.WriteFile(target, before, 0)
			return true
		}
		return false
	}
	const sysctl = "kernel.shm_rmid_forced"
	value := "1"
	if strings.TrimSpace(string(before)) == "1" {
		value = "0"
	}
	oom := 7
	if strings.TrimSpace(string(before)) == "7" {
		oom = 8
	}
	runtimes(t, func(e *env) {
		for _, c := range []struct {
			dest string
			set  func(*specs.Spec)
		}{
			{"/proc/sys/kernel/shm_rmid_forced", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{sysctl: value} }},
			{"/proc/self/oom_score_adj", func(s *specs.Spec) { s.Process.OOMScoreAdj = &oom }},
		} {
			b := newBundle(t, "true")
			c.set(b.spec)
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: c.dest, Type: "bind", Source: target, Options: []string{"bind", "rw"}})
			b.save(t)
			if res := e.runContainer(b); res.code != 0 {
				e.Logf("spec bind over %s refused: %s", c.dest, strings.TrimSpace(res.stderr))
			} else {
				e.Logf("spec bind over %s: the container ran", c.dest)
			}
			hit(e)
		}

		e.Run("overmount-oom_score_adj", func(t *testing.T) {
			e := sub(e, t)
			b := newBundle(t, "true")
			b.spec.Process.OOMScoreAdj = &oom
			marker := filepath.Join(t.TempDir(), "mounted")
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			b.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: exe, Args: []string{"overmount-hook"},
				Env: []string{overmountEnv + "=" + strings.Join([]string{target, "/proc/1/oom_score_adj", marker}, "|")}}}}
			b.save(t)
			res := e.runContainer(b)
			redirected := hit(e)
			if m, _ := os.ReadFile(marker); !bytes.HasPrefix(m, []byte("mounted ")) {
				e.fatalf("the hook did not mount over /proc/1/oom_score_adj: %v", res)
			}
			switch {
			case redirected:
			case res.code == 0:
				e.failf("the container ran with %s mounted over /proc/1/oom_score_adj before oomScoreAdj was applied (the target is unchanged)", target)
			case !strings.Contains(res.stderr, "mounted over"):
				e.failf("refused, but not for the mount over oom_score_adj: %s", strings.TrimSpace(res.stderr))
			default:
				e.Logf("refused: %s", strings.TrimSpace(res.stderr))
			}
		})

		e.Run("overmounted-procfs-sysctl", func(t *testing.T) {
			e := sub(e, t)
			// kernel.domainname: the files of the IPC and network sysctls
			// are looked up per namespace, so a mount on the host's
			// kernel/shm_rmid_forced is not on the container's; the UTS
			// ones are shared.
			b := newBundle(t, "cat", "/proc/sys/kernel/domainname")
			b.spec.Linux.Sysctl = map[string]string{"kernel.domainname": strconv.Itoa(oom)}
			for i, m := range b.spec.Mounts {
				if m.Destination == "/proc" {
					b.spec.Mounts[i] = specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc", Options: []string{"rbind", "nosuid", "nodev", "noexec"}}
				}
			}
			b.save(t)
			res := inPrivateMounts(e, func() error {
				return unix.Mount(target, "/proc/sys/kernel/domainname", "", unix.MS_BIND, "")
			}, func() result { return e.runContainer(b) })
			switch {
			case hit(e):
			case res.code == 0:
				e.failf("the container ran with %s mounted over the sysctl's file (the target is unchanged; the container reads %q there)", target, strings.TrimSpace(res.stdout))
			case !strings.Contains(res.stderr, "kernel.domainname"):
				e.failf("refused, but not at the sysctl: %s", strings.TrimSpace(res.stderr))
			default:
				e.Logf("refused: %s", strings.TrimSpace(res.stderr))
			}
		})

		// The race: the image's /evil (shared with the attacker) flips
		// between a file and a symlink to the sysctl's procfs file while
		// the spec binds the target file there.
		b := newBundle(t, "cat", "/proc/sys/kernel/shm_rmid_forced")
		b.spec.Linux.Sysctl = map[string]string{sysctl: value}
		b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/evil", Type: "bind", Source: target, Options: []string{"bind", "rw"}})
		b.save(t)
		evil := filepath.Join(b.rootfs(), "evil")
		link := filepath.Join(b.rootfs(), "evil-link")
		os.WriteFile(evil, nil, 0o644)
		os.Symlink("/proc/sys/kernel/shm_rmid_forced", link)
		s := swap(t, evil, link)
		var out tally
		n := until(raceTime(e), func(int) bool {
			b.renew(t)
			res := e.runContainer(b)
			if res.code != 0 {
				out.refuse(res.stderr)
			} else {
				out.ran++
			}
			hit(e)
			return !e.Failed()
		})
		s.halt()
		e.Logf("%d containers, %d swaps: %v", n, s.swaps.Load(), &out)
	})
}

// inPrivateMounts runs fn in a mount namespace of its own, private to the
// host, after setup has run there: the processes fn starts get it.
func inPrivateMounts(e *env, setup func() error, fn func() result) result {
	e.Helper()
	var res result
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread never returns to the scheduler: it ends with the
		// goroutine, and with it the namespace.
		runtime.LockOSThread()
		if err = unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			return
		}
		if err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return
		}
		if err = setup(); err != nil {
			return
		}
		res = fn()
	}()
	<-done
	if err != nil {
		e.fatalf("private mount namespace: %v", err)
	}
	return res
}

// overmountEnv, when set to "source|target|marker", makes the test binary
// overmountHook: a hook that binds the host's source over target inside
// the mount namespace of the container whose state it reads on stdin,
// then creates the file marker on the host.
const overmountEnv = "RAILCAR_SECURITY_OVERMOUNT"

func init() {
	if v := os.Getenv(overmountEnv); v != "" {
		if err := overmountHook(v); err != nil {
			fmt.Fprintln(os.Stderr, "overmount hook:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func overmountHook(v string) error {
	f := strings.Split(v, "|")
	if len(f) != 3 {
		return fmt.Errorf("%s=%q: want source|target|marker", overmountEnv, v)
	}
	var st specs.State
	if err := json.NewDecoder(os.Stdin).Decode(&st); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	runtime.LockOSThread()
	tree, err := unix.OpenTree(unix.AT_FDCWD, f[0], unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", f[0], err)
	}
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/mnt", st.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	marker, err := os.Create(f[2])
	if err != nil {
		return err
	}
	defer marker.Close()
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("setns to the mount namespace of %d: %w", st.Pid, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, f[1], unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s onto %s: %w", f[0], f[1], err)
	}
	_, err = marker.WriteString("mounted " + f[0] + " over " + f[1] + "\n")
	return err
}
