package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
)

var idSeq atomic.Int64

// uniqueID names test containers so that runs and runtimes never collide.
func uniqueID(name string) string {
	return fmt.Sprintf("shimtest-%s-%d-%d", name, os.Getpid(), idSeq.Add(1))
}

// buffer is a goroutine-safe bytes.Buffer for container output.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newContainer creates a container running args under runtime; it is
// removed (task and all) when the test ends.
func (e *env) newContainer(runtime, name string, args []string, opts ...oci.SpecOpts) client.Container {
	e.t.Helper()
	id := uniqueID(name)
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(e.image), oci.WithProcessArgs(args...)}, opts...)
	c, err := e.client.NewContainer(e.ctx, id,
		client.WithNewSnapshot(id+"-snap", e.image),
		client.WithNewSpec(specOpts...),
		client.WithRuntime(runtime, nil),
	)
	ok(e.t, err)
	e.t.Cleanup(func() { e.remove(c) })
	return c
}

// remove kills and deletes the task (if any) and the container.
func (e *env) remove(c client.Container) {
	ctx := e.ctx
	if t, err := c.Task(ctx, nil); err == nil {
		_ = t.Kill(ctx, syscall.SIGKILL, client.WithKillAll)
		if st, err := t.Wait(ctx); err == nil {
			select {
			case <-st:
			case <-time.After(10 * time.Second):
			}
		}
		_, _ = t.Delete(ctx, client.WithProcessKill)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		e.t.Logf("delete container %s: %v", c.ID(), err)
	}
}

// stdio collects a task's output.
type stdio struct {
	out, err buffer
}

func (s *stdio) creator() cio.Creator {
	return cio.NewCreator(cio.WithStreams(nil, &s.out, &s.err))
}

// newTask creates (not starts) the task with captured output.
func (e *env) newTask(c client.Container, s *stdio, opts ...client.NewTaskOpts) client.Task {
	e.t.Helper()
	t, err := c.NewTask(e.ctx, s.creator(), opts...)
	if err != nil {
		// What the container's init wrote before it failed.
		time.Sleep(100 * time.Millisecond)
		e.t.Logf("stdout of %s: %q", c.ID(), s.out.String())
		e.t.Logf("stderr of %s: %q", c.ID(), s.err.String())
	}
	ok(e.t, err)
	return t
}

// startTask creates and starts a task; exits receives its exit status.
func (e *env) startTask(c client.Container, s *stdio) (client.Task, <-chan client.ExitStatus) {
	e.t.Helper()
	t := e.newTask(c, s)
	exits, err := t.Wait(e.ctx)
	ok(e.t, err)
	ok(e.t, t.Start(e.ctx))
	return t, exits
}

// waitExit waits for an exit status, failing after timeout.
func (e *env) waitExit(exits <-chan client.ExitStatus, timeout time.Duration) uint32 {
	e.t.Helper()
	select {
	case st := <-exits:
		code, _, err := st.Result()
		ok(e.t, err)
		return code
	case <-time.After(timeout):
		e.t.Fatalf("no exit within %s", timeout)
	}
	return 0
}

// finishTask waits for the exit, then deletes the task and returns status
// and output.
func (e *env) finishTask(t client.Task, exits <-chan client.ExitStatus) uint32 {
	e.t.Helper()
	code := e.waitExit(exits, 30*time.Second)
	_, err := t.Delete(e.ctx)
	ok(e.t, err)
	return code
}

// shimPids returns the pids of shim servers whose command line has "-id id".
func shimPids(id string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is as good as gone.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mounted reports whether a mount point of this process ends in suffix.
func mounted(suffix string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasSuffix(f[4], suffix) {
			return true
		}
	}
	return false
}

// listeningSockets returns the unix socket paths under /run/containerd/s
// that process pid holds.
func listeningSockets(pid int) []string {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, _ := os.ReadFile("/proc/net/unix")
	var paths []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && inodes[f[6]] && strings.HasPrefix(f[7], "/run/containerd/s/") {
			paths = append(paths, f[7])
			delete(inodes, f[6])
		}
	}
	return paths
}
