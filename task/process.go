package task

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	"github.com/containerd/fifo"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/railcar-oci/railcar/linux"
)

// status is a process's place in its life. The allowed moves are:
//
//	created -> running -> stopped -> deleted
//	created -> stopped               (killed or failed before start)
//	created -> deleted               (deleted without start)
//	running <-> paused               (init only, the whole container)
//	paused  -> stopped               (SIGKILL reaches a frozen cgroup v2)
//
// Requests check the status first and answer with an error; a move outside
// this table is a bug in the shim and panics.
type status int

const (
	statusCreated status = iota
	statusRunning
	statusPaused
	statusStopped
	statusDeleted
)

func (s status) String() string {
	switch s {
	case statusCreated:
		return "created"
	case statusRunning:
		return "running"
	case statusPaused:
		return "paused"
	case statusStopped:
		return "stopped"
	case statusDeleted:
		return "deleted"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

func (s status) proto() tasktypes.Status {
	switch s {
	case statusCreated:
		return tasktypes.Status_CREATED
	case statusRunning:
		return tasktypes.Status_RUNNING
	case statusPaused:
		return tasktypes.Status_PAUSED
	case statusStopped, statusDeleted:
		return tasktypes.Status_STOPPED
	}
	return tasktypes.Status_UNKNOWN
}

var transitions = map[status][]status{
	statusCreated: {statusRunning, statusStopped, statusDeleted},
	statusRunning: {statusPaused, statusStopped},
	statusPaused:  {statusRunning, statusStopped},
	statusStopped: {statusDeleted},
}

// process is the init or one exec of a container.
type process struct {
	id    string // exec id; "" for the init
	stdio Stdio
	// spec is the exec's process (nil for the init).
	spec *specs.Process

	mu         sync.Mutex
	st         status
	pid        int
	exitStatus int
	exitedAt   time.Time
	exited     chan struct{} // closed when the exit is recorded

	pio *pipeIO
	tty *ttyIO
	// stdinHold is the shim's own writer on the stdin fifo: the workload
	// sees EOF only after CloseIO drops it and the client closed its end.
	stdinHold io.Closer
}

func newProcess(id string, s Stdio, spec *specs.Process) *process {
	return &process{id: id, stdio: s, spec: spec, exited: make(chan struct{})}
}

// setStatus moves p to st; p.mu must be held.
func (p *process) setStatus(to status) {
	for _, ok := range transitions[p.st] {
		if ok == to {
			p.st = to
			return
		}
	}
	panic(fmt.Sprintf("process %q: impossible transition %s -> %s", p.id, p.st, to))
}

func (p *process) status() status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// started records the pid of a process that now runs.
func (p *process) started(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pid = pid
	if p.st == statusCreated {
		p.setStatus(statusRunning)
	}
}

// setExited records the exit; later calls are ignored.
func (p *process) setExited(status int, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == statusStopped || p.st == statusDeleted {
		return
	}
	p.setStatus(statusStopped)
	p.exitStatus = status
	p.exitedAt = at
	if p.tty != nil {
		p.tty.shutdown()
	}
	close(p.exited)
}

// exit returns the recorded exit (zero values before the exit).
func (p *process) exit() (int, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitStatus, p.exitedAt
}

// Wait blocks until the process has exited or ctx is done.
func (p *process) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// holdStdin opens the shim's writer on the stdin fifo (see stdinHold).
func (p *process) holdStdin() error {
	if p.stdio.Stdin == "" {
		return nil
	}
	f, err := fifo.OpenFifo(context.Background(), p.stdio.Stdin, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin fifo %s: %w", p.stdio.Stdin, err)
	}
	p.stdinHold = f
	return nil
}

// CloseIO closes the process's stdin.
func (p *process) CloseIO() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdinHold != nil {
		err := p.stdinHold.Close()
		p.stdinHold = nil
		return err
	}
	return nil
}

// Resize resizes the process's terminal.
func (p *process) Resize(ws console.WinSize) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty == nil {
		return fmt.Errorf("process %q has no terminal: %w", p.id, errdefs.ErrFailedPrecondition)
	}
	if p.st == statusStopped || p.st == statusDeleted {
		return nil
	}
	return p.tty.Resize(ws)
}

// signal sends sig to a running exec. The pid cannot have been reused: the
// shim reaps its children itself and marks the process stopped first.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.st {
	case statusCreated:
		return fmt.Errorf("process %q not started: %w", p.id, errdefs.ErrFailedPrecondition)
	case statusStopped, statusDeleted:
		return fmt.Errorf("process %q: process already finished: %w", p.id, errdefs.ErrNotFound)
	}
	if p.pid <= 0 {
		// kill(0) and kill(-1) would hit the shim's group or every process.
		return fmt.Errorf("process %q has no pid: %w", p.id, errdefs.ErrFailedPrecondition)
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		if err == syscall.ESRCH {
			return fmt.Errorf("process %q: process already finished: %w", p.id, errdefs.ErrNotFound)
		}
		return fmt.Errorf("signal process %q: %w", p.id, err)
	}
	return nil
}

// closeIO drains the output (bounded) and releases every stdio resource.
func (p *process) closeIO() {
	p.mu.Lock()
	pio, tty, hold := p.pio, p.tty, p.stdinHold
	p.pio, p.tty, p.stdinHold = nil, nil, nil
	p.mu.Unlock()
	if pio != nil {
		// The container's ends first: when create or exec failed, the
		// shim still holds them and the copies would wait out the timeout.
		pio.closeChild()
		pio.waitCopies(10 * time.Second)
		pio.Close()
	}
	if tty != nil {
		tty.copies.Wait()
		tty.Close()
	}
	if hold != nil {
		hold.Close()
	}
}

// markDeleted moves a created or stopped process to deleted.
func (p *process) markDeleted() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != statusDeleted {
		p.setStatus(statusDeleted)
	}
}

// openIO connects the process's stdio before it is created or exec'd;
// childStdio then holds the container's ends. A terminal is connected in
// afterStart, when the engine has handed over the pty master.
func (p *process) openIO(ctx context.Context, s *Service, ns, logID string) error {
	if err := p.holdStdin(); err != nil {
		return err
	}
	if p.stdio.Terminal {
		return nil
	}
	pio, err := openStdio(ctx, logID, ns, p.stdio, s.reaper)
	if err != nil {
		return err
	}
	p.pio = pio
	return nil
}

// childStdio is what the engine hands to the workload.
func (p *process) childStdio() linux.Stdio {
	if p.pio == nil {
		return linux.Stdio{}
	}
	return p.pio.child
}

var timeNow = time.Now

// afterStart finishes stdio once the engine has created or exec'd the
// process: the shim drops its copies of the container's pipe ends, and a
// terminal's master starts copying.
func (p *process) afterStart(ctx context.Context, s *Service, master *os.File, logID string) error {
	if p.pio != nil {
		p.pio.closeChild()
	}
	if master != nil {
		tty, err := s.consoles.copyConsole(ctx, master, p.stdio, logID, s.ns, s.reaper)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.tty = tty
		p.mu.Unlock()
	}
	return nil
}
