package task

import (
	"context"
	"testing"
	"time"
)

func TestProcessLifecycle(t *testing.T) {
	p := newProcess("e1", Stdio{}, nil)
	if got := p.status(); got != statusCreated {
		t.Fatalf("new process: got %s, want created", got)
	}
	p.started(42)
	if got, pid := p.status(), p.Pid(); got != statusRunning || pid != 42 {
		t.Fatalf("after start: got %s pid %d", got, pid)
	}
	at := time.Now()
	p.setExited(3, at)
	p.setExited(9, time.Now()) // a second exit is ignored
	if st, when := p.exit(); st != 3 || !when.Equal(at) {
		t.Errorf("exit: got %d at %v, want 3 at %v", st, when, at)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Errorf("wait after exit: %v", err)
	}
	p.markDeleted()
	if got := p.status(); got != statusDeleted {
		t.Errorf("after delete: got %s", got)
	}
}

func TestImpossibleTransitionPanics(t *testing.T) {
	p := newProcess("", Stdio{}, nil)
	p.setExited(0, time.Now())
	defer func() {
		if recover() == nil {
			t.Error("stopped -> running did not panic")
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setStatus(statusRunning)
}

func TestSignalNeedsPid(t *testing.T) {
	p := newProcess("e1", Stdio{}, nil)
	p.mu.Lock()
	p.st = statusRunning // running without a pid must never signal 0 or -1
	p.mu.Unlock()
	if err := p.signal(0); err == nil {
		t.Error("signal of a process without pid succeeded")
	}
}
