package task

import (
	"context"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
)

// Shutdown with no container left stops the shim only after the grace, so
// that a Delete still on its way is answered; a Create begun meanwhile keeps
// the shim up.
func TestShutdownGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan time.Time, 4)
	s := New(ctx, Options{Reaper: NewReaper(), Shutdown: func() { stopped <- time.Now() }})

	asked := time.Now()
	if _, err := s.Shutdown(ctx, &taskAPI.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-stopped:
		if d := at.Sub(asked); d < shutdownGrace {
			t.Fatalf("stopped %s after Shutdown, before the grace of %s", d, shutdownGrace)
		}
	case <-time.After(5 * shutdownGrace):
		t.Fatal("no stop after the grace")
	}

	// A Create in progress when the grace ends keeps the shim.
	s.mu.Lock()
	s.creating++
	s.mu.Unlock()
	if _, err := s.Shutdown(ctx, &taskAPI.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Fatal("stopped while a Create was in progress")
	case <-time.After(3 * shutdownGrace):
	}
}
