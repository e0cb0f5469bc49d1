package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

// tty proxies a foreground workload's pseudo-terminal to railcar's own
// terminal (run/exec -t without --console-socket): the engine hands over
// the pty master, railcar puts its terminal in raw mode and copies both
// ways until the workload exits.
type tty struct {
	host    console.Console
	epoller *console.Epoller
	console *console.EpollConsole
	wg      sync.WaitGroup
	once    sync.Once
}

// newTTY finds railcar's terminal: one of its standard streams, or the
// controlling terminal when all three are redirected.
func newTTY() (*tty, error) {
	t := &tty{}
	for _, s := range []*os.File{os.Stderr, os.Stdout, os.Stdin} {
		c, err := console.ConsoleFromFile(s)
		if err == nil {
			t.host = c
			return t, nil
		}
		if !errors.Is(err, console.ErrNotAConsole) {
			return nil, fmt.Errorf("get console: %w", err)
		}
	}
	f, err := os.Open("/dev/tty")
	if err != nil {
		return nil, fmt.Errorf("a terminal is needed for a foreground process with terminal: true: %w", err)
	}
	c, err := console.ConsoleFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("get console: %w", err)
	}
	t.host = c
	return t, nil
}

// attach takes the pty master (CreateOpts.OnConsole / ExecOpts.OnConsole)
// and starts copying.
func (t *tty) attach(master *os.File) error {
	// The engine closes its copy once this returns.
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup pty master: %w", err)
	}
	c, err := console.ConsoleFromFile(os.NewFile(uintptr(fd), "pty-master"))
	if err != nil {
		unix.Close(fd)
		return err
	}
	if err := console.ClearONLCR(c.Fd()); err != nil {
		return err
	}
	epoller, err := console.NewEpoller()
	if err != nil {
		return err
	}
	ec, err := epoller.Add(c)
	if err != nil {
		epoller.Close()
		return err
	}
	go func() { _ = epoller.Wait() }()
	go func() { _, _ = io.Copy(ec, os.Stdin) }()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_, _ = io.Copy(os.Stdout, ec)
	}()
	if err := t.host.SetRaw(); err != nil {
		_ = ec.Close()
		return fmt.Errorf("set the terminal in raw mode: %w", err)
	}
	t.epoller, t.console = epoller, ec
	return nil
}

// resize gives the workload's terminal the size of railcar's.
func (t *tty) resize() error {
	if t == nil || t.console == nil {
		return nil
	}
	return t.console.ResizeFrom(t.host)
}

// close drains the workload's output and restores railcar's terminal.
func (t *tty) close() {
	if t == nil {
		return
	}
	t.once.Do(t.doClose)
}

func (t *tty) doClose() {
	if t.console != nil && t.epoller != nil {
		_ = t.console.Shutdown(t.epoller.CloseConsole)
		t.wg.Wait()
		_ = t.console.Close()
	}
	_ = t.host.Reset()
}

// processIO wires a process's stdio the runc way: a terminal in the
// foreground is a pty attached to ours (t, which the caller closes); a
// detached terminal goes to the console socket; without a terminal the
// workload's stdio are railcar's own (a shim or a supervisor hands it
// pipes or fifos).
func processIO(terminal, detach bool) (stdio linux.Stdio, onConsole func(*os.File) error, t *tty, err error) {
	switch {
	case terminal && !detach:
		if t, err = newTTY(); err != nil {
			return linux.Stdio{}, nil, nil, err
		}
		return linux.Stdio{}, t.attach, t, nil
	case !terminal:
		return linux.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, nil, nil, nil
	}
	return linux.Stdio{}, nil, nil, nil
}
