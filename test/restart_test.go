package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	client "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
)

// restartContainerd stops the test daemon with SIGTERM (its shims and
// tasks live on) and starts it again.
func restartContainerd(t *testing.T) {
	t.Helper()
	dir := os.Getenv("RAILCAR_TEST_CONTAINERD_DIR")
	if dir == "" {
		dir = "/run/railcar-test/containerd"
	}
	b, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
	ok(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	ok(t, err)
	ok(t, syscall.Kill(pid, syscall.SIGTERM))
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("containerd %d did not stop on SIGTERM", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := func() {
		out, err := exec.Command(filepath.Join(repoRoot, "test", "containerd.sh"), "start").CombinedOutput()
		if err != nil {
			t.Fatalf("containerd.sh start: %v\n%s", err, out)
		}
	}
	start()
}

// Tasks survive a restart of containerd: the daemon reconnects to their
// shims, and exec, kill, wait and delete work through the new connection.
func TestContainerdRestart(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "restart", []string{"sleep", "1000"})
		task, err := c.NewTask(e.ctx, cio.NullIO)
		ok(t, err)
		ok(t, task.Start(e.ctx))
		pid := task.Pid()
		shims := shimPids(c.ID())

		restartContainerd(t)

		e2 := newEnv(t)
		c2, err := e2.client.LoadContainer(e2.ctx, c.ID())
		ok(t, err)
		t2, err := c2.Task(e2.ctx, nil)
		ok(t, err)
		if t2.Pid() != pid {
			t.Errorf("pid after restart %d, want %d", t2.Pid(), pid)
		}
		st, err := t2.Status(e2.ctx)
		ok(t, err)
		if st.Status != client.Running {
			t.Errorf("status after restart %q, want running", st.Status)
		}
		if got := shimPids(c.ID()); len(shims) == 0 || len(got) != len(shims) || got[0] != shims[0] {
			t.Errorf("shims before %v, after %v: want the same shim", shims, got)
		}
		spec, err := c2.Spec(e2.ctx)
		ok(t, err)
		ps := *spec.Process
		ps.Args = []string{"sh", "-c", "exit 4"}
		p, err := t2.Exec(e2.ctx, "after-restart", &ps, cio.NullIO)
		ok(t, err)
		pexits, err := p.Wait(e2.ctx)
		ok(t, err)
		ok(t, p.Start(e2.ctx))
		if got := e2.waitExit(pexits, 20*time.Second); got != 4 {
			t.Errorf("exec after restart: exit %d, want 4", got)
		}
		_, err = p.Delete(e2.ctx)
		ok(t, err)
		exits, err := t2.Wait(e2.ctx)
		ok(t, err)
		ok(t, t2.Kill(e2.ctx, syscall.SIGKILL))
		if got := e2.finishTask(t2, exits); got != 137 {
			t.Errorf("exit after kill %d, want 137", got)
		}
		eventually(t, 10*time.Second, "shim exits after delete", func() bool { return len(shimPids(c.ID())) == 0 })
	})
}
