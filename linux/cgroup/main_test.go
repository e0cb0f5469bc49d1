package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests use real cgroups and need root: `go test ./linux/cgroup/`.
// They create cgroups below /railcar-test only and fail the run if any is
// left behind. On a v1/hybrid host they mount the enabled but unmounted v1
// controllers (hugetlb, net_cls, net_prio, perf_event), which stay mounted.
// testdata/v2-vm.sh runs them on a cgroup v2 qemu guest.
//
// The test binary doubles as the process put into cgroups: with
// RAILCAR_CGROUP_HELPER set it waits for one byte on stdin (so the test
// can move it into a cgroup first) and then does what the variable says.
const helperEnv = "RAILCAR_CGROUP_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	if os.Geteuid() == 0 {
		if err := mountV1Controllers(); err != nil {
			fmt.Fprintln(os.Stderr, "mount v1 controllers:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if os.Geteuid() == 0 {
		if err := checkNoLeftovers(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkNoLeftovers fails the run when a test of this process left a
// cgroup below /railcar-test in any hierarchy (names end in -<pid>, so a
// concurrent run of these tests is left alone), removes those, and then
// /railcar-test itself where it is empty.
func checkNoLeftovers() error {
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/railcar-test")
	if exists("/sys/fs/cgroup/railcar-test") {
		parents = append(parents, "/sys/fs/cgroup/railcar-test")
	}
	own := fmt.Sprintf("-%d", os.Getpid())
	var leaks, procs []string
	for _, d := range parents {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() && (strings.HasSuffix(e.Name(), own) || strings.Contains(e.Name(), own+"-")) {
				leaks = append(leaks, filepath.Join(d, e.Name()))
			}
		}
	}
	for _, l := range leaks {
		b, _ := os.ReadFile(filepath.Join(l, "cgroup.procs"))
		for _, pid := range strings.Fields(string(b)) {
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			procs = append(procs, fmt.Sprintf("%s: pid %s %q", l, pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	err := removeCgroups(leaks...)
	for _, d := range parents {
		_ = unix.Rmdir(d) // busy or not empty while another run is going on
	}
	if err != nil {
		return fmt.Errorf("%w (processes: %v)", err, procs)
	}
	if len(leaks) > 0 {
		return fmt.Errorf("cgroups left behind: %v (processes: %v)", leaks, procs)
	}
	return nil
}

func helper(mode string) int {
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil {
		return 3
	}
	switch {
	case mode == "sleep":
		time.Sleep(100 * time.Second)
		return 0
	case mode == "hold":
		// 16 MiB touched, then sleep.
		hold := make([]byte, 16<<20)
		for i := 0; i < len(hold); i += 4096 {
			hold[i] = 1
		}
		fmt.Println("holding")
		time.Sleep(100 * time.Second)
		return int(hold[0]) - 1
	case mode == "alloc":
		// Touch every page of ever more memory until the OOM killer ends it.
		var keep [][]byte
		for range 1024 {
			chunk := make([]byte, 1<<20)
			for i := 0; i < len(chunk); i += 4096 {
				chunk[i] = 1
			}
			keep = append(keep, chunk)
		}
		fmt.Println(len(keep))
		return 0
	case strings.HasPrefix(mode, "open:"):
		f, err := os.OpenFile(strings.TrimPrefix(mode, "open:"), os.O_RDONLY, 0)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		f.Close()
		return 0
	}
	return 2
}

// child is a helper process waiting at its gate.
type child struct {
	cmd  *exec.Cmd
	gate io.WriteCloser
}

func startChild(t *testing.T, mode string) *child {
	t.Helper()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	gate, err := cmd.StdinPipe()
	ok(t, err)
	ok(t, cmd.Start())
	c := &child{cmd: cmd, gate: gate}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// open lets the child go on.
func (c *child) open(t *testing.T) {
	t.Helper()
	_, err := c.gate.Write([]byte{1})
	ok(t, err)
}

// wait returns the child's wait status, failing after timeout.
func (c *child) wait(t *testing.T, timeout time.Duration) syscall.WaitStatus {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("child %d still running after %v", c.pid(), timeout)
	}
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// mountV1Controllers mounts the enabled v1 controllers that have no
// hierarchy yet (hugetlb, net_cls, net_prio, perf_event on a fresh
// machine), as the machine recipe allows test setup to do, so that every
// controller can be tested. They stay mounted.
func mountV1Controllers() error {
	if Mode() != ModeV1 && Mode() != ModeHybrid {
		return nil
	}
	f, err := os.Open("/proc/cgroups")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var name string
		var hier, num, enabled int
		if n, _ := fmt.Sscanf(sc.Text(), "%s %d %d %d", &name, &hier, &num, &enabled); n != 4 || hier != 0 || enabled != 1 {
			continue
		}
		dir := filepath.Join("/sys/fs/cgroup", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("cgroup", dir, "cgroup", 0, name); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", name, err)
		}
	}
	return sc.Err()
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (real cgroups)")
	}
}

func readT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	ok(t, err)
	return strings.TrimSpace(string(b))
}

func wantFile(t *testing.T, path, want string) {
	t.Helper()
	if got := readT(t, path); got != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

// testPath is a unique cgroup path for one test.
func testPath(t *testing.T) string {
	return fmt.Sprintf("/railcar-test/%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), os.Getpid())
}
