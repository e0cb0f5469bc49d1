package main

import (
	"os"
	"os/signal"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// signalBufferSize is large so that no signal is lost while the container
// is being set up; they are forwarded once it runs.
const signalBufferSize = 2048

// signalHandler forwards the signals railcar receives to a foreground
// workload and reaps it, as runc does for `run` and `exec` without -d.
type signalHandler struct {
	signals chan os.Signal
}

// newSignalHandler makes railcar a child subreaper, so that a workload that
// is not its direct child (and any process the workload orphans) is reparented
// to it and can be waited for, and starts catching every signal. Call it
// before the container is created, so signals sent meanwhile are queued.
func newSignalHandler() *signalHandler {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		logrus.Warnf("set child subreaper: %v", err)
	}
	s := make(chan os.Signal, signalBufferSize)
	signal.Notify(s)
	return &signalHandler{signals: s}
}

// forward delivers signals to pid until it exits and returns its exit
// status: the exit code, or 128+signal when a signal killed it. It must
// run only once the engine has stopped starting helper processes: it
// reaps every child of railcar.
func (h *signalHandler) forward(pid int, t *tty) int {
	if t != nil {
		_ = t.resize()
	}
	// The workload may have exited before the loop starts; its SIGCHLD is
	// then already queued, but check once in case it was coalesced.
	if status, ok := h.reap(pid); ok {
		return status
	}
	for s := range h.signals {
		switch s {
		case unix.SIGWINCH:
			if t != nil {
				_ = t.resize()
			}
		case unix.SIGCHLD:
			if status, ok := h.reap(pid); ok {
				return status
			}
		case unix.SIGURG:
			// The Go runtime's preemption signal; not meant for the
			// workload.
		default:
			sig := s.(unix.Signal)
			logrus.Debugf("forwarding signal %d (%s) to %d", int(sig), unix.SignalName(sig), pid)
			if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
				logrus.Errorf("forward signal %s: %v", unix.SignalName(sig), err)
			}
		}
	}
	return -1
}

// reap waits for every exited child without blocking and reports whether
// pid was among them, with its exit status.
func (h *signalHandler) reap(pid int) (int, bool) {
	var (
		found  bool
		status int
	)
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || p <= 0 {
			return status, found
		}
		logrus.Debugf("process %d exited: %v", p, ws)
		if p == pid {
			found, status = true, exitStatus(ws)
		}
	}
}

// stop stops catching signals.
func (h *signalHandler) stop() {
	signal.Stop(h.signals)
}

// exitStatus is the shell's view of a wait status.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
