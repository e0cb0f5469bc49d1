package task

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

// Exit is one reaped child of the shim.
type Exit struct {
	Pid       int
	Status    int
	Timestamp time.Time
}

// Reaper owns every wait4 of the shim. The shim is a child subreaper: the
// container inits (created with CLONE_PARENT by the engine), exec'd
// processes, orphans of the containers and the engine's helper processes all
// end up as its children, and exactly one loop reaps them. Helper processes
// go through Start/Wait (the engine's linux.Monitor); every exit is also
// broadcast to the subscribers (the task service).
type Reaper struct {
	mu          sync.Mutex
	waiters     map[int]chan int
	subscribers map[chan Exit]struct{}
}

var _ linux.Monitor = (*Reaper)(nil)

// NewReaper returns a reaper; call Run to start reaping.
func NewReaper() *Reaper {
	return &Reaper{
		waiters:     make(map[int]chan int),
		subscribers: make(map[chan Exit]struct{}),
	}
}

// Start starts cmd and registers its pid before the reap loop can see the
// exit: the lock is held across cmd.Start so an early exit is never lost.
func (r *Reaper) Start(cmd *exec.Cmd) (chan int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan int, 1)
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// Wait returns the exit status of a command started by Start. cmd.Wait is
// still called (its error, ECHILD, ignored) so that os/exec closes its pipes
// and stops its copying goroutines.
func (r *Reaper) Wait(cmd *exec.Cmd, ch chan int) (int, error) {
	status := <-ch
	_ = cmd.Wait()
	return status, nil
}

// Subscribe returns a channel receiving every exit. The channel is buffered;
// the subscriber must keep reading it until Unsubscribe.
func (r *Reaper) Subscribe() chan Exit {
	ch := make(chan Exit, 128)
	r.mu.Lock()
	r.subscribers[ch] = struct{}{}
	r.mu.Unlock()
	return ch
}

// Unsubscribe stops delivery to ch and closes it.
func (r *Reaper) Unsubscribe(ch chan Exit) {
	r.mu.Lock()
	delete(r.subscribers, ch)
	r.mu.Unlock()
	close(ch)
}

// Run reaps children on every SIGCHLD until done is closed. The caller must
// have made the process a child subreaper.
func (r *Reaper) Run(done <-chan struct{}) {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	r.reap() // children that exited before Notify
	for {
		select {
		case <-done:
			return
		case <-sigs:
			r.reap()
		}
	}
}

// reap collects every exited child. SIGCHLD is coalesced by the kernel, so
// one signal may stand for many exits: loop until wait4 finds none.
func (r *Reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.dispatch(Exit{Pid: pid, Status: exitStatus(ws), Timestamp: time.Now()})
	}
}

func (r *Reaper) dispatch(e Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiters[e.Pid]; ok {
		ch <- e.Status
		delete(r.waiters, e.Pid)
	}
	for ch := range r.subscribers {
		ch <- e
	}
}

// exitStatus follows the shell's convention (and runc's): 128+signal for a
// process killed by a signal.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
