package task

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"syscall"

	"github.com/containerd/console"
	"github.com/containerd/fifo"

	"github.com/railcar-oci/railcar/linux"
)

// consoles copies terminals to containerd's fifos through one epoll fd for
// the whole shim, as containerd's runc shim does: the pty master is
// non-blocking and a read after the last slave closes returns EIO, which the
// epoller turns into EOF.
type consoles struct {
	once    sync.Once
	epoller *console.Epoller
	err     error
}

func (cs *consoles) init() error {
	cs.once.Do(func() {
		cs.epoller, cs.err = console.NewEpoller()
		if cs.err == nil {
			go cs.epoller.Wait()
		}
	})
	return cs.err
}

// Close stops the epoll loop.
func (cs *consoles) Close() error {
	if cs.epoller != nil {
		return cs.epoller.Close()
	}
	return nil
}

// ttyIO is one process's terminal.
type ttyIO struct {
	cs      *consoles
	con     *console.EpollConsole
	copies  sync.WaitGroup
	closers []func() error
}

// copyConsole takes over master (the pty master the engine handed over) and
// copies stdin's fifo into it and its output to stdout's fifo.
func (cs *consoles) copyConsole(ctx context.Context, master *os.File, s Stdio, logID, ns string, m linux.Monitor) (_ *ttyIO, retErr error) {
	if err := cs.init(); err != nil {
		master.Close()
		return nil, fmt.Errorf("console epoller: %w", err)
	}
	c, err := console.ConsoleFromFile(master)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("console from pty master: %w", err)
	}
	ec, err := cs.epoller.Add(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("add console to epoll: %w", err)
	}
	t := &ttyIO{cs: cs, con: ec}
	defer func() {
		if retErr != nil {
			t.Close()
		}
	}()
	if s.Stdin != "" {
		in, err := fifo.OpenFifo(context.Background(), s.Stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("open stdin fifo %s: %w", s.Stdin, err)
		}
		t.closers = append(t.closers, in.Close)
		go func() {
			copyBuf(ec, in)
			// The client closed stdin: the terminal's input is
			// done, as with runc's shim.
			_ = ec.Shutdown(cs.epoller.CloseConsole)
		}()
	}
	if s.Stdout == "" {
		return t, nil
	}
	u, err := url.Parse(s.Stdout)
	if err != nil {
		return nil, fmt.Errorf("parse stdout uri: %w", err)
	}
	var w io.WriteCloser
	switch u.Scheme {
	case "", "fifo":
		fw, err := fifo.OpenFifo(ctx, s.Stdout, syscall.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open fifo %s: %w", s.Stdout, err)
		}
		fr, err := fifo.OpenFifo(ctx, s.Stdout, syscall.O_RDONLY, 0)
		if err != nil {
			fw.Close()
			return nil, fmt.Errorf("open fifo %s: %w", s.Stdout, err)
		}
		t.closers = append(t.closers, fr.Close)
		w = fw
	case "file":
		f, err := os.OpenFile(u.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		w = f
	case "binary", "binary-v2":
		// The logger gets the terminal's output as its stdout and an
		// empty stderr.
		pio, err := newPipeIO(Stdio{Stdout: s.Stdout, Stderr: s.Stdout})
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, pio.Close)
		if err := pio.startLogger(ctx, u, logID, ns, m); err != nil {
			return nil, err
		}
		w, pio.child.Stdout = pio.child.Stdout, nil
		pio.closeChild()
	default:
		return nil, fmt.Errorf("stdio scheme %q with a terminal: %w", u.Scheme, errUnsupported)
	}
	t.copies.Add(1)
	go func() {
		defer t.copies.Done()
		copyBuf(w, ec)
		w.Close()
	}()
	return t, nil
}

// Resize sets the terminal's window size.
func (t *ttyIO) Resize(ws console.WinSize) error { return t.con.Resize(ws) }

// shutdown ends the copies once the process has exited.
func (t *ttyIO) shutdown() { _ = t.con.Shutdown(t.cs.epoller.CloseConsole) }

// Close releases the terminal and the fifos.
func (t *ttyIO) Close() error {
	t.shutdown()
	err := t.con.Close()
	for _, c := range t.closers {
		_ = c()
	}
	return err
}
