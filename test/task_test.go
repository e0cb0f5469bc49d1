package integration

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cgroupsv1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroupsv2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunExitCode(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "exit", []string{"sh", "-c", "echo out; echo err >&2; exit 3"})
		var s stdio
		task, exits := e.startTask(c, &s)
		if !mounted(c.ID() + "/rootfs") {
			t.Errorf("rootfs of %s is not mounted while it runs", c.ID())
		}
		if got := e.finishTask(task, exits); got != 3 {
			t.Errorf("exit status: got %d, want 3", got)
		}
		if mounted(c.ID() + "/rootfs") {
			t.Errorf("rootfs of %s still mounted after delete", c.ID())
		}
		if got := s.out.String(); got != "out\n" {
			t.Errorf("stdout: got %q, want %q", got, "out\n")
		}
		if got := s.err.String(); got != "err\n" {
			t.Errorf("stderr: got %q, want %q", got, "err\n")
		}
	})
}

func TestDetachedKill(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "kill", []string{"sleep", "1000"})
		var s stdio
		task, exits := e.startTask(c, &s)
		st, err := task.Status(e.ctx)
		ok(t, err)
		if st.Status != client.Running {
			t.Fatalf("status: got %s, want running", st.Status)
		}
		pid := int(task.Pid())
		ok(t, task.Kill(e.ctx, syscall.SIGKILL))
		if got := e.finishTask(task, exits); got != 137 {
			t.Errorf("exit status: got %d, want 137", got)
		}
		if alive(pid) {
			t.Errorf("init %d still alive after kill and delete", pid)
		}
	})
}

func TestExec(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "exec", []string{"sleep", "1000"})
		var s stdio
		task, _ := e.startTask(c, &s)
		spec, err := c.Spec(e.ctx)
		ok(t, err)

		t.Run("notty", func(t *testing.T) {
			pspec := *spec.Process
			pspec.Args = []string{"sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"}
			var es stdio
			p, err := task.Exec(e.ctx, "notty", &pspec, es.creator())
			ok(t, err)
			exits, err := p.Wait(e.ctx)
			ok(t, err)
			ok(t, p.Start(e.ctx))
			if got := e.waitExit(exits, 20*time.Second); got != 5 {
				t.Errorf("exec exit status: got %d, want 5", got)
			}
			_, err = p.Delete(e.ctx)
			ok(t, err)
			if got := es.out.String(); got != "exec-out\n" {
				t.Errorf("exec stdout: got %q", got)
			}
			if got := es.err.String(); got != "exec-err\n" {
				t.Errorf("exec stderr: got %q", got)
			}
		})
		t.Run("tty", func(t *testing.T) {
			pspec := *spec.Process
			pspec.Terminal = true
			pspec.Args = []string{"sh", "-c", "tty; exit 6"}
			var es stdio
			p, err := task.Exec(e.ctx, "tty", &pspec, cio.NewCreator(cio.WithStreams(nil, &es.out, nil), cio.WithTerminal))
			ok(t, err)
			exits, err := p.Wait(e.ctx)
			ok(t, err)
			ok(t, p.Start(e.ctx))
			if got := e.waitExit(exits, 20*time.Second); got != 6 {
				t.Errorf("exec exit status: got %d, want 6", got)
			}
			p.IO().Wait()
			_, err = p.Delete(e.ctx)
			ok(t, err)
			if got := es.out.String(); !strings.HasPrefix(got, "/dev/pts/") {
				t.Errorf("tty exec output: got %q, want /dev/pts/N", got)
			}
		})
		ok(t, task.Kill(e.ctx, syscall.SIGKILL))
	})
}

func TestPauseResume(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "pause", []string{"sleep", "1000"})
		var s stdio
		task, _ := e.startTask(c, &s)
		ok(t, task.Pause(e.ctx))
		st, err := task.Status(e.ctx)
		ok(t, err)
		if st.Status != client.Paused {
			t.Errorf("after pause: got %s, want paused", st.Status)
		}
		ok(t, task.Resume(e.ctx))
		st, err = task.Status(e.ctx)
		ok(t, err)
		if st.Status != client.Running {
			t.Errorf("after resume: got %s, want running", st.Status)
		}
	})
}

// metrics decodes the task's cgroup metrics (v1 or v2).
func (e *env) metrics(task client.Task) any {
	e.t.Helper()
	m, err := task.Metrics(e.ctx)
	ok(e.t, err)
	v, err := typeurl.UnmarshalAny(m.Data)
	ok(e.t, err)
	return v
}

func memoryLimit(t *testing.T, m any) uint64 {
	switch m := m.(type) {
	case *cgroupsv1.Metrics:
		return m.GetMemory().GetUsage().GetLimit()
	case *cgroupsv2.Metrics:
		return m.GetMemory().GetUsageLimit()
	}
	t.Fatalf("unexpected metrics type %T", m)
	return 0
}

func TestUpdateMemory(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "update", []string{"sleep", "1000"}, oci.WithMemoryLimit(256<<20))
		var s stdio
		task, _ := e.startTask(c, &s)
		if got := memoryLimit(t, e.metrics(task)); got != 256<<20 {
			t.Fatalf("memory limit at create: got %d, want %d", got, 256<<20)
		}
		limit := int64(64 << 20)
		ok(t, task.Update(e.ctx, client.WithResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})))
		if got := memoryLimit(t, e.metrics(task)); got != uint64(limit) {
			t.Errorf("memory limit after update: got %d, want %d", got, limit)
		}
	})
}

func TestMetrics(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "metrics", []string{"sleep", "1000"})
		var s stdio
		task, _ := e.startTask(c, &s)
		// The init's setup threads are uncharged from pids.current
		// shortly after its execve, not at once (measured with runc
		// too): wait for the one workload process.
		var pids uint64
		eventually(t, 5*time.Second, "pids.current to be 1", func() bool {
			switch m := e.metrics(task).(type) {
			case *cgroupsv1.Metrics:
				if m.GetMemory().GetUsage().GetUsage() == 0 {
					t.Fatalf("memory usage is 0: %v", m.GetMemory())
				}
				pids = m.GetPids().GetCurrent()
			case *cgroupsv2.Metrics:
				if m.GetMemory().GetUsage() == 0 {
					t.Fatalf("memory usage is 0: %v", m.GetMemory())
				}
				pids = m.GetPids().GetCurrent()
			default:
				t.Fatalf("unexpected metrics type %T", m)
			}
			if pids != 1 {
				t.Logf("pids.current %d", pids)
			}
			return pids == 1
		})
	})
}

func TestPs(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "ps", []string{"sleep", "1000"})
		var s stdio
		task, _ := e.startTask(c, &s)
		spec, err := c.Spec(e.ctx)
		ok(t, err)
		pspec := *spec.Process
		pspec.Args = []string{"sleep", "1000"}
		var es stdio
		p, err := task.Exec(e.ctx, "ps-exec", &pspec, es.creator())
		ok(t, err)
		ok(t, p.Start(e.ctx))
		infos, err := task.Pids(e.ctx)
		ok(t, err)
		got := map[uint32]string{}
		for _, i := range infos {
			got[i.Pid] = ""
			if i.Info != nil {
				v, err := typeurl.UnmarshalAny(i.Info)
				ok(t, err)
				if d, isDetails := v.(*options.ProcessDetails); isDetails {
					got[i.Pid] = d.ExecID
				}
			}
		}
		if _, found := got[task.Pid()]; !found || len(got) != 2 {
			t.Errorf("pids: got %v, want init %d and exec %d", got, task.Pid(), p.Pid())
		}
		if got[p.Pid()] != "ps-exec" {
			t.Errorf("exec %d: got exec id %q, want ps-exec", p.Pid(), got[p.Pid()])
		}
	})
}

func TestResizePty(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "resize", []string{"sh", "-c", "sleep 1; stty size"}, oci.WithTTY)
		var out buffer
		task, err := c.NewTask(e.ctx, cio.NewCreator(cio.WithStreams(nil, &out, nil), cio.WithTerminal))
		ok(t, err)
		exits, err := task.Wait(e.ctx)
		ok(t, err)
		ok(t, task.Start(e.ctx))
		ok(t, task.Resize(e.ctx, 123, 45))
		if got := e.waitExit(exits, 20*time.Second); got != 0 {
			t.Errorf("exit status: got %d, want 0", got)
		}
		task.IO().Wait()
		_, err = task.Delete(e.ctx)
		ok(t, err)
		if got := strings.TrimSpace(out.String()); got != "45 123" {
			t.Errorf("stty size: got %q, want %q", got, "45 123")
		}
	})
}

func TestCloseIO(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "closeio", []string{"cat"})
		var out buffer
		task, err := c.NewTask(e.ctx, cio.NewCreator(cio.WithStreams(strings.NewReader("through stdin\n"), &out, io.Discard)))
		ok(t, err)
		exits, err := task.Wait(e.ctx)
		ok(t, err)
		ok(t, task.Start(e.ctx))
		// cat reads to EOF: it exits only when the shim closes stdin.
		eventually(t, 10*time.Second, "stdin to reach cat", func() bool { return out.String() != "" })
		ok(t, task.CloseIO(e.ctx, client.WithStdinCloser))
		if got := e.waitExit(exits, 20*time.Second); got != 0 {
			t.Errorf("exit status: got %d, want 0", got)
		}
		task.IO().Wait()
		_, err = task.Delete(e.ctx)
		ok(t, err)
		if got := out.String(); got != "through stdin\n" {
			t.Errorf("stdout: got %q", got)
		}
	})
}

func TestManyContainers(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		const n = 4
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			c := e.newContainer(runtime, fmt.Sprintf("many%d", i), []string{"sh", "-c", fmt.Sprintf("sleep 0.5; echo container-%d; exit %d", i, i)})
			wg.Add(1)
			go func() {
				defer wg.Done()
				var s stdio
				task, err := c.NewTask(e.ctx, s.creator())
				if err != nil {
					errs <- err
					return
				}
				exits, err := task.Wait(e.ctx)
				if err == nil {
					err = task.Start(e.ctx)
				}
				if err != nil {
					errs <- err
					return
				}
				st := <-exits
				task.IO().Wait()
				if _, err := task.Delete(e.ctx); err != nil {
					errs <- err
					return
				}
				if code := st.ExitCode(); code != uint32(i) {
					errs <- fmt.Errorf("container %d: exit status %d", i, code)
				}
				if got, want := s.out.String(), fmt.Sprintf("container-%d\n", i); got != want {
					errs <- fmt.Errorf("container %d: stdout %q, want %q", i, got, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// A create that fails (no such binary) reports the error at once: the
// client's output copies are not left waiting for the shim's pipe ends.
func TestCreateFailsPromptly(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		c := e.newContainer(runtime, "createfail", []string{"/nonexistent"})
		var s stdio
		start := time.Now()
		_, err := c.NewTask(e.ctx, s.creator())
		if err == nil {
			t.Fatal("create of a task without its binary succeeded")
		}
		if !strings.Contains(err.Error(), "/nonexistent") {
			t.Errorf("error does not name the binary: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the failed create took %s", d)
		}
	})
}
