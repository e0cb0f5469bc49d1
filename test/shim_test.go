package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
)

// recorder collects the task events of one container.
type recorder struct {
	mu     sync.Mutex
	events []string // "topic" or "topic:exec-id"
	oom    bool
}

// record subscribes to task events of container id until the test ends.
func (e *env) record(id string) *recorder {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	e.t.Cleanup(cancel)
	ch, errs := e.client.Subscribe(ctx, `topic~="/tasks/"`)
	r := &recorder{}
	go func() {
		for {
			select {
			case env := <-ch:
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				var cid, detail string
				switch ev := v.(type) {
				case *eventstypes.TaskCreate:
					cid = ev.ContainerID
				case *eventstypes.TaskStart:
					cid = ev.ContainerID
				case *eventstypes.TaskExecAdded:
					cid, detail = ev.ContainerID, ev.ExecID
				case *eventstypes.TaskExecStarted:
					cid, detail = ev.ContainerID, ev.ExecID
				case *eventstypes.TaskExit:
					cid, detail = ev.ContainerID, ev.ID
				case *eventstypes.TaskPaused:
					cid = ev.ContainerID
				case *eventstypes.TaskResumed:
					cid = ev.ContainerID
				case *eventstypes.TaskOOM:
					cid = ev.ContainerID
				case *eventstypes.TaskDelete:
					cid = ev.ContainerID
				}
				if cid != id {
					continue
				}
				r.mu.Lock()
				s := env.Topic
				if detail != "" && detail != id {
					s += ":" + detail
				}
				r.events = append(r.events, s)
				if env.Topic == "/tasks/oom" {
					r.oom = true
				}
				r.mu.Unlock()
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	// Subscriptions are asynchronous: give it a moment to be in place.
	time.Sleep(300 * time.Millisecond)
	return r
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// TestEventOrder pins down the events containerd expects, in its order: an
// exec's exit is published before the exit of the init it outlived.
func TestEventOrder(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "events", []string{"sleep", "1000"})
		rec := e.record(c.ID())
		var s stdio
		task, exits := e.startTask(c, &s)
		spec, err := c.Spec(e.ctx)
		ok(t, err)
		pspec := *spec.Process
		pspec.Args = []string{"sleep", "1000"}
		var es stdio
		p, err := task.Exec(e.ctx, "x1", &pspec, es.creator())
		ok(t, err)
		ok(t, p.Start(e.ctx))
		ok(t, task.Pause(e.ctx))
		ok(t, task.Resume(e.ctx))
		// The init dies; the kernel kills the exec with it (private pid
		// namespace). containerd must see the exec's exit first.
		ok(t, task.Kill(e.ctx, syscall.SIGKILL))
		if got := e.waitExit(exits, 20*time.Second); got != 137 {
			t.Errorf("init exit: got %d, want 137", got)
		}
		_, err = p.Delete(e.ctx)
		ok(t, err)
		_, err = task.Delete(e.ctx)
		ok(t, err)
		want := []string{"/tasks/create", "/tasks/start", "/tasks/exec-added:x1", "/tasks/exec-started:x1",
			"/tasks/paused", "/tasks/resumed", "/tasks/exit:x1", "/tasks/exit", "/tasks/delete"}
		deadline := time.Now().Add(10 * time.Second)
		for len(rec.list()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		got := rec.list()
		if runtime == runcRuntime && len(got) == len(want)-1 {
			// runc's shim may exit on Shutdown before its queued
			// TaskDelete is out (seen here now and then); railcar's
			// drains its queue first.
			want = want[:len(want)-1]
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s events:\n got  %v\n want %v", runtime, got, want)
		}
	})
}

func TestOOMEvent(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		// Swap counts against no limit on cgroup v1 unless memsw is set
		// too; with swap off on these machines the memory limit is enough.
		c := e.newContainer(runtime, "oom", []string{"sh", "-c", `x=a; while true; do x="$x$x"; done`},
			oci.WithMemoryLimit(16<<20))
		rec := e.record(c.ID())
		var s stdio
		task, exits := e.startTask(c, &s)
		if got := e.finishTask(task, exits); got != 137 {
			t.Errorf("exit status: got %d, want 137 (OOM kill)", got)
		}
		eventually(t, 10*time.Second, "a /tasks/oom event", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return rec.oom
		})
	})
}

// TestShimKilled kills the shim of a running task: containerd notices, runs
// the shim's `delete` action, which must kill the container and report it.
func TestShimKilled(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "shimkill", []string{"sleep", "1000"})
		var s stdio
		task, exits := e.startTask(c, &s)
		pid := int(task.Pid())
		shims := shimPids(c.ID())
		if len(shims) != 1 {
			t.Fatalf("shim processes for %s: got %v, want one", c.ID(), shims)
		}
		ok(t, syscall.Kill(shims[0], syscall.SIGKILL))
		// The wait ends with the connection ("ttrpc: closed").
		select {
		case <-exits:
		case <-time.After(30 * time.Second):
			t.Fatal("wait did not end after the shim was killed")
		}
		// containerd runs the shim binary's `delete` action for the dead
		// shim; then the task is gone.
		st, err := task.Delete(e.ctx)
		if err == nil {
			if code := st.ExitCode(); code != 137 {
				t.Errorf("exit status from delete: got %d, want 137", code)
			}
		} else if !strings.Contains(err.Error(), "not found") {
			t.Errorf("delete task: %v", err)
		}
		if _, err := c.Task(e.ctx, nil); err == nil {
			t.Errorf("task still listed after its shim was killed and it was deleted")
		}
		eventually(t, 10*time.Second, fmt.Sprintf("container init %d to be gone", pid), func() bool { return !alive(pid) })
	})
}

// TestPodGrouping: containers of one CRI sandbox share one shim, which
// exits with its last task.
func TestPodGrouping(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		pod := uniqueID("pod")
		group := oci.WithAnnotations(map[string]string{"io.kubernetes.cri.sandbox-id": pod})
		c1 := e.newContainer(runtime, "pod-a", []string{"sleep", "1000"}, group)
		c2 := e.newContainer(runtime, "pod-b", []string{"sleep", "1000"}, group)
		var s1, s2 stdio
		t1, x1 := e.startTask(c1, &s1)
		t2, x2 := e.startTask(c2, &s2)
		shims := shimPids(c1.ID())
		if len(shims) != 1 {
			t.Fatalf("shims of the pod: got %v, want one", shims)
		}
		if other := shimPids(c2.ID()); len(other) != 0 {
			t.Errorf("second container got its own shim %v", other)
		}
		sockets := listeningSockets(shims[0])
		if len(sockets) == 0 {
			t.Errorf("pod shim %d holds no socket under /run/containerd/s", shims[0])
		}
		// The first container goes first: its bundle held the address.
		ok(t, t1.Kill(e.ctx, syscall.SIGKILL))
		e.finishTask(t1, x1)
		e.remove(c1)
		if !alive(shims[0]) {
			t.Fatalf("pod shim exited while a task remains")
		}
		ok(t, t2.Kill(e.ctx, syscall.SIGKILL))
		e.finishTask(t2, x2)
		eventually(t, 10*time.Second, "the pod shim to exit", func() bool { return !alive(shims[0]) })
		// The first container's bundle (where `start` wrote the address)
		// was deleted first; the socket must go all the same. (runc's
		// shim leaves it behind in this order, as measured here.)
		if runtime == runcRuntime {
			return
		}
		for _, s := range sockets {
			if _, err := os.Stat(s); err == nil {
				t.Errorf("socket %s left behind by the pod shim", s)
			}
		}
	})
}

// TestStraceExecs runs a container's whole life under `strace -f -e
// trace=execve` of its shim: nothing may be executed but the shim itself
// (re-executed as the container's init) and the container's own programs.
// A first container of the same group starts the shim so that strace can
// attach before the traced container is created.
func TestStraceExecs(t *testing.T) {
	e := newEnv(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("RAILCAR_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("strace is not installed")
		}
		t.Skip("strace is not installed")
	}
	group := oci.WithAnnotations(map[string]string{"io.containerd.railcar.v2.group": uniqueID("strace")})
	anchor := e.newContainer(railcarRuntime, "strace-anchor", []string{"sleep", "1000"}, group)
	var as stdio
	at, ax := e.startTask(anchor, &as)
	shims := shimPids(anchor.ID())
	if len(shims) != 1 {
		t.Fatalf("shim of %s: got %v, want one", anchor.ID(), shims)
	}
	shimExe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", shims[0]))
	ok(t, err)

	logf := filepath.Join(t.TempDir(), "strace.log")
	cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=execve", "-s", "256", "-o", logf, "-p", fmt.Sprint(shims[0]))
	ok(t, cmd.Start())
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
	}
	defer stop()
	eventually(t, 10*time.Second, "strace to attach", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", shims[0]))
		return regexp.MustCompile(`TracerPid:\s+[1-9]`).Match(b)
	})

	c := e.newContainer(railcarRuntime, "strace", []string{"sleep", "1000"}, group)
	var s stdio
	task, exits := e.startTask(c, &s)
	spec, err := c.Spec(e.ctx)
	ok(t, err)
	pspec := *spec.Process
	pspec.Args = []string{"sh", "-c", "exit 0"}
	var es stdio
	p, err := task.Exec(e.ctx, "traced", &pspec, es.creator())
	ok(t, err)
	pexits, err := p.Wait(e.ctx)
	ok(t, err)
	ok(t, p.Start(e.ctx))
	e.waitExit(pexits, 20*time.Second)
	_, err = p.Delete(e.ctx)
	ok(t, err)
	ok(t, task.Pause(e.ctx))
	ok(t, task.Resume(e.ctx))
	ok(t, task.Kill(e.ctx, syscall.SIGKILL))
	e.finishTask(task, exits)
	stop()

	data, err := os.ReadFile(logf)
	ok(t, err)
	execve := regexp.MustCompile(`execve\("([^"]*)", \["([^"]*)"`)
	allowedProgram := map[string]bool{"sleep": true, "sh": true}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		m := execve.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		path := m[1]
		switch {
		case path == shimExe, strings.HasPrefix(path, "/proc/self/fd/"):
			// The shim re-executing itself (the protected copy).
		case allowedProgram[filepath.Base(path)]:
			// The container's programs, looked up in its PATH.
		default:
			t.Errorf("the shim executed %q: %s", path, line)
		}
	}
	if n == 0 {
		t.Errorf("strace saw no execve at all: %s", data)
	}
	ok(t, at.Kill(e.ctx, syscall.SIGKILL))
	e.finishTask(at, ax)
}

func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	ok(t, err)
	return len(ents)
}

// TestNoLeaks runs containers with fifos, a terminal and execs through a
// shim that stays up (a group's first container holds it) and compares
// the shim's fds and threads before and after.
func TestNoLeaks(t *testing.T) {
	e := newEnv(t)
	group := oci.WithAnnotations(map[string]string{"io.containerd.railcar.v2.group": uniqueID("leak")})
	anchor := e.newContainer(railcarRuntime, "leak-anchor", []string{"sleep", "1000"}, group)
	var as stdio
	at, ax := e.startTask(anchor, &as)
	shims := shimPids(anchor.ID())
	if len(shims) != 1 {
		t.Fatalf("shim of %s: got %v, want one", anchor.ID(), shims)
	}
	shim := shims[0]
	round := func() {
		c := e.newContainer(railcarRuntime, "leak", []string{"sleep", "1000"}, group)
		var s stdio
		task, exits := e.startTask(c, &s)
		spec, err := c.Spec(e.ctx)
		ok(t, err)
		for i, tty := range []bool{false, true} {
			pspec := *spec.Process
			pspec.Terminal = tty
			pspec.Args = []string{"sh", "-c", "echo hi"}
			var es stdio
			opts := []cio.Opt{cio.WithStreams(nil, &es.out, &es.err)}
			if tty {
				opts = append(opts, cio.WithTerminal)
			}
			p, err := task.Exec(e.ctx, fmt.Sprintf("e%d", i), &pspec, cio.NewCreator(opts...))
			ok(t, err)
			pexits, err := p.Wait(e.ctx)
			ok(t, err)
			ok(t, p.Start(e.ctx))
			e.waitExit(pexits, 20*time.Second)
			p.IO().Wait()
			_, err = p.Delete(e.ctx)
			ok(t, err)
		}
		ok(t, task.Kill(e.ctx, syscall.SIGKILL))
		e.finishTask(task, exits)
		e.remove(c)
	}
	round() // warm up: epoll fd, lazily started goroutines
	time.Sleep(200 * time.Millisecond)
	before := fdCount(t, shim)
	for range 3 {
		round()
	}
	time.Sleep(200 * time.Millisecond)
	if after := fdCount(t, shim); after != before {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", shim))
		var names []string
		for _, d := range ents {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", shim, d.Name()))
			names = append(names, d.Name()+"->"+l)
		}
		t.Errorf("shim fds: %d before, %d after three containers: %v", before, after, names)
	}
	ok(t, at.Kill(e.ctx, syscall.SIGKILL))
	e.finishTask(at, ax)
}

// TestConcurrentDelete sends two Deletes of a stopped init at once, straight
// to the shim, as containerd's CRI plugin does for a failed sandbox (its
// clean-up and its exit monitor). Both must get the exit status: were the
// second told NotFound while the first still ran, containerd would shut the
// shim down and close the connection under the first one's reply.
func TestConcurrentDelete(t *testing.T) {
	e := newEnv(t)
	c := e.newContainer(railcarRuntime, "cdel", []string{"sh", "-c", "exit 7"})
	var s stdio
	task, exits := e.startTask(c, &s)
	if code := e.waitExit(exits, 20*time.Second); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
	shims := shimPids(c.ID())
	if len(shims) != 1 {
		t.Fatalf("shims of %s: %v", c.ID(), shims)
	}
	sockets := listeningSockets(shims[0])
	if len(sockets) == 0 {
		t.Fatalf("shim %d holds no socket", shims[0])
	}
	svc := taskv3.NewTTRPCTaskClient(dialShim(t, "unix://"+sockets[0]))
	var wg sync.WaitGroup
	var resps [2]*taskv3.DeleteResponse
	var errs [2]error
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resps[i], errs[i] = svc.Delete(e.ctx, &taskv3.DeleteRequest{ID: c.ID()})
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("delete %d: %v", i, errs[i])
		} else if resps[i].ExitStatus != 7 {
			t.Errorf("delete %d: exit status %d, want 7", i, resps[i].ExitStatus)
		}
	}
	if !alive(shims[0]) {
		t.Fatalf("the shim exited without Shutdown")
	}
	// What containerd sends after each delete.
	_, err := svc.Shutdown(e.ctx, &taskv3.ShutdownRequest{ID: c.ID()})
	ok(t, err)
	eventually(t, 10*time.Second, "the shim to exit after Shutdown", func() bool { return !alive(shims[0]) })
	// containerd's own record: its delete finds the shim gone.
	_, _ = task.Delete(e.ctx)
	e.remove(c)
}
