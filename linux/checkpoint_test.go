package linux_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/railcar-oci/railcar/linux"
)

// criuWorks reports whether criu is installed and `criu check` passes on
// this kernel (Debian 12's criu 3.17 fails it on kernels it does not know).
func criuWorks(t *testing.T) (bool, string) {
	t.Helper()
	if _, err := exec.LookPath("criu"); err != nil {
		return false, "criu is not installed"
	}
	out, err := exec.Command("criu", "check").CombinedOutput()
	if err != nil {
		return false, "criu check: " + strings.TrimSpace(string(out))
	}
	return true, ""
}

// started creates and starts a container running args, with stdout w.
func started(t *testing.T, e *linux.Engine, id string, w *os.File, args ...string) *linux.Container {
	t.Helper()
	dir, s := bundle(t, args...)
	c, err := e.Create(context.Background(), id, linux.CreateOpts{Bundle: dir, Spec: s, Stdio: linux.Stdio{Stdout: w}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), true) })
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	return c
}

// Without criu, checkpoint says so and leaves the container running.
func TestCheckpointWithoutCriu(t *testing.T) {
	e := engine(t)
	c := started(t, e, "nocriu", nil, "sleep", "100")
	err := c.Checkpoint(context.Background(), linux.CriuOpts{ImagePath: t.TempDir(), CriuPath: "/nonexistent/criu"})
	if !errors.Is(err, linux.ErrNoCriu) || !strings.Contains(err.Error(), "/nonexistent/criu") {
		t.Fatalf("checkpoint without criu: %v", err)
	}
	t.Logf("checkpoint: %v", err)
	if st := c.Status(); st != linux.Running {
		t.Fatalf("status after a failed checkpoint: %s", st)
	}
}

// Without criu, restore says so and leaves no container behind.
func TestRestoreWithoutCriu(t *testing.T) {
	e := engine(t)
	dir, s := bundle(t, "sleep", "100")
	_, err := e.Restore(context.Background(), "nocriu", linux.RestoreOpts{Bundle: dir, Spec: s,
		Criu: linux.CriuOpts{ImagePath: t.TempDir(), CriuPath: "/nonexistent/criu"}})
	if !errors.Is(err, linux.ErrNoCriu) {
		t.Fatalf("restore without criu: %v", err)
	}
	t.Logf("restore: %v", err)
	if _, err := e.Load("nocriu"); !errors.Is(err, linux.ErrNotExist) {
		t.Fatalf("a failed restore left a container: %v", err)
	}
}

// Only a running or paused container can be checkpointed.
func TestCheckpointCreated(t *testing.T) {
	e := engine(t)
	dir, s := bundle(t, "sleep", "100")
	c, err := e.Create(context.Background(), "created", linux.CreateOpts{Bundle: dir, Spec: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(context.Background(), true)
	err = c.Checkpoint(context.Background(), linux.CriuOpts{ImagePath: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "created") {
		t.Fatalf("checkpoint of a created container: %v", err)
	}
}

// Where criu is installed but fails (this kernel), the error is criu's
// and names the log, which holds the details; the container runs on.
func TestCheckpointCriuFails(t *testing.T) {
	if _, err := exec.LookPath("criu"); err != nil {
		t.Skip("criu is not installed")
	}
	if ok, _ := criuWorks(t); ok {
		t.Skip("criu works on this kernel: see TestCheckpointRestore")
	}
	e := engine(t)
	c := started(t, e, "criufails", nil, "sleep", "100")
	img, work := t.TempDir(), t.TempDir()
	err := c.Checkpoint(context.Background(), linux.CriuOpts{ImagePath: img, WorkPath: work})
	if err == nil {
		t.Fatal("checkpoint succeeded where criu check fails")
	}
	t.Logf("checkpoint: %v", err)
	log := filepath.Join(work, "dump.log")
	if !strings.Contains(err.Error(), "criu") || !strings.Contains(err.Error(), log) {
		t.Fatalf("the error does not name the criu log %s: %v", log, err)
	}
	if _, err := os.Stat(log); err != nil {
		t.Fatalf("criu log: %v", err)
	}
	if st := c.Status(); st != linux.Running {
		t.Fatalf("status after a failed checkpoint: %s", st)
	}
}

// A counting container is checkpointed and restored with a new stdout
// pipe: the count goes on from where it stopped.
func TestCheckpointRestore(t *testing.T) {
	if ok, why := criuWorks(t); !ok {
		t.Skip(why)
	}
	e := engine(t)
	r, w, _ := os.Pipe()
	dir, s := bundle(t, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done")
	c, err := e.Create(context.Background(), "cr", linux.CreateOpts{Bundle: dir, Spec: s, Stdio: linux.Stdio{Stdout: w}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(context.Background(), true)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(r)
	last := 0
	for last < 3 && lines.Scan() {
		last, _ = strconv.Atoi(lines.Text())
	}
	img := t.TempDir()
	if err := c.Checkpoint(context.Background(), linux.CriuOpts{ImagePath: img}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	// What it wrote before the dump froze it.
	r.SetReadDeadline(time.Now().Add(2 * time.Second))
	for lines.Scan() {
		last, _ = strconv.Atoi(lines.Text())
	}
	r.Close()
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}

	r2, w2, _ := os.Pipe()
	defer r2.Close()
	c2, err := e.Restore(context.Background(), "cr", linux.RestoreOpts{Bundle: dir, Spec: s,
		Stdio: linux.Stdio{Stdout: w2}, Criu: linux.CriuOpts{ImagePath: img}})
	w2.Close()
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	defer c2.Delete(context.Background(), true)
	if st := c2.Status(); st != linux.Running {
		t.Fatalf("restored status %s", st)
	}
	r2.SetReadDeadline(time.Now().Add(20 * time.Second))
	l2 := bufio.NewScanner(r2)
	if !l2.Scan() {
		t.Fatalf("no output after restore: %v", l2.Err())
	}
	next, _ := strconv.Atoi(l2.Text())
	if next != last+1 {
		t.Fatalf("count before checkpoint %d, after restore %d", last, next)
	}
	t.Logf("count %d before the checkpoint, %d after the restore (pid %d)", last, next, c2.Pid())
	if err := c2.Signal(9, false); err != nil {
		t.Fatal(err)
	}
	if code, err := c2.Wait(); err != nil || code != 137 {
		t.Fatalf("wait for the restored init: %d %v", code, err)
	}
}
