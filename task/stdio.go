package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/fifo"
	"github.com/containerd/log"

	"github.com/railcar-oci/railcar/linux"
)

// Stdio is what containerd asked for a process: fifo paths (or a
// binary:// / file:// log URI in Stdout) and whether it has a terminal.
type Stdio struct {
	Stdin, Stdout, Stderr string
	Terminal              bool
}

func (s Stdio) isNull() bool { return s.Stdin == "" && s.Stdout == "" && s.Stderr == "" }

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

func copyBuf(dst io.Writer, src io.Reader) {
	b := bufPool.Get().(*[]byte)
	defer bufPool.Put(b)
	_, _ = io.CopyBuffer(dst, src, *b)
}

// pipeIO connects a process without terminal to containerd's stdio. The
// container gets pipe ends (never containerd's fifos themselves, so a client
// that goes away or comes back does not change what the workload holds); the
// shim copies between the pipes and the fifos or log file, or hands them to a
// logging binary.
type pipeIO struct {
	// child holds the container's ends until the process has started.
	child linux.Stdio
	// stdinW is the shim's end of the container's stdin pipe.
	stdinW *os.File
	// outR and errR are the shim's ends of the output pipes.
	outR, errR *os.File
	// copies counts the output copy goroutines; they end when every
	// holder of the pipes' write ends (the workload and its children)
	// has closed them.
	copies sync.WaitGroup
	// closers run on Close: fifos, files, the logger.
	mu      sync.Mutex
	closers []func() error
}

// newPipeIO creates the pipes for s; start the copies with startCopy once
// the process runs.
func newPipeIO(s Stdio) (_ *pipeIO, retErr error) {
	p := &pipeIO{}
	defer func() {
		if retErr != nil {
			p.closeChild()
			p.Close()
		}
	}()
	if s.Stdin != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
		p.child.Stdin, p.stdinW = r, w
	}
	if s.Stdout != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("stdout pipe: %w", err)
		}
		p.child.Stdout, p.outR = w, r
	}
	if s.Stderr != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("stderr pipe: %w", err)
		}
		p.child.Stderr, p.errR = w, r
	}
	return p, nil
}

func (p *pipeIO) addCloser(f func() error) {
	p.mu.Lock()
	p.closers = append(p.closers, f)
	p.mu.Unlock()
}

// closeChild drops the shim's copies of the container's ends: once the
// workload has them, the shim must not hold them or the output copies would
// never see EOF.
func (p *pipeIO) closeChild() {
	for _, f := range []*os.File{p.child.Stdin, p.child.Stdout, p.child.Stderr} {
		if f != nil {
			f.Close()
		}
	}
	p.child = linux.Stdio{}
}

// Close stops the copies and releases every fd.
func (p *pipeIO) Close() error {
	p.closeChild()
	var errs []error
	for _, f := range []*os.File{p.stdinW, p.outR, p.errR} {
		if f != nil {
			if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	p.mu.Lock()
	closers := p.closers
	p.closers = nil
	p.mu.Unlock()
	for _, c := range closers {
		if err := c(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openStdio sets up the pipes and the copies for s, before the process is
// created: for binary:// the logger runs first (it must be ready before the
// workload writes), for fifos the copies start now and block until the
// container writes.
func openStdio(ctx context.Context, id, ns string, s Stdio, m linux.Monitor) (*pipeIO, error) {
	if s.isNull() {
		return &pipeIO{}, nil
	}
	p, err := newPipeIO(s)
	if err != nil {
		return nil, err
	}
	if err := p.connect(ctx, id, ns, s, m); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *pipeIO) connect(ctx context.Context, id, ns string, s Stdio, m linux.Monitor) error {
	u, err := url.Parse(s.Stdout)
	if err != nil {
		return fmt.Errorf("parse stdout uri: %w", err)
	}
	switch u.Scheme {
	case "", "fifo":
		return p.copyFifos(ctx, s.Stdin, s.Stdout, s.Stderr)
	case "file":
		if err := os.MkdirAll(filepath.Dir(u.Path), 0o755); err != nil {
			return fmt.Errorf("log file dir: %w", err)
		}
		f, err := os.OpenFile(u.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		p.addCloser(f.Close)
		// stdout and stderr share the file; os.File writes are
		// atomic per call with O_APPEND.
		p.copyOut(p.outR, f)
		p.copyOut(p.errR, f)
		return p.copyStdin(s.Stdin)
	case "binary", "binary-v2":
		return p.startLogger(ctx, u, id, ns, m)
	default:
		return fmt.Errorf("unknown stdio scheme %q: %w", u.Scheme, errUnsupported)
	}
}

var errUnsupported = errors.New("unsupported")

func (p *pipeIO) copyOut(src *os.File, dst io.Writer) {
	if src == nil {
		return
	}
	p.copies.Add(1)
	go func() {
		defer p.copies.Done()
		copyBuf(dst, src)
	}()
}

// copyFifos copies the output pipes to containerd's fifos. Each fifo is
// opened for reading too (and kept): a writer on a fifo nobody reads gets
// EPIPE, and the client (ctr, CRI) may attach late or reattach.
func (p *pipeIO) copyFifos(ctx context.Context, stdin, stdout, stderr string) error {
	for _, o := range []struct {
		path string
		src  *os.File
	}{{stdout, p.outR}, {stderr, p.errR}} {
		if o.path == "" || o.src == nil {
			continue
		}
		w, err := fifo.OpenFifo(ctx, o.path, syscall.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open fifo %s: %w", o.path, err)
		}
		r, err := fifo.OpenFifo(ctx, o.path, syscall.O_RDONLY, 0)
		if err != nil {
			w.Close()
			return fmt.Errorf("open fifo %s: %w", o.path, err)
		}
		p.copies.Add(1)
		go func(src *os.File) {
			defer p.copies.Done()
			copyBuf(w, src)
			w.Close()
			r.Close()
		}(o.src)
	}
	return p.copyStdin(stdin)
}

func (p *pipeIO) copyStdin(path string) error {
	if path == "" || p.stdinW == nil {
		return nil
	}
	f, err := fifo.OpenFifo(context.Background(), path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin fifo %s: %w", path, err)
	}
	p.addCloser(f.Close)
	w := p.stdinW
	go func() {
		copyBuf(w, f)
		// EOF on the fifo: every writer, including the shim's own
		// (closed by CloseIO), is gone; the workload sees EOF.
		w.Close()
		f.Close()
	}()
	return nil
}

// waitCopies waits (bounded) for the output copies to drain.
func (p *pipeIO) waitCopies(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		p.copies.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		log.L.Warn("timed out draining process output")
	}
}

const loggerTermTimeout = 12 * time.Second

// startLogger runs a containerd logging binary (binary:// URI): it gets the
// read ends of stdout and stderr as fds 3 and 4 and signals readiness on fd
// 5 (binary-v2: by writing a byte; binary: by closing it).
func (p *pipeIO) startLogger(ctx context.Context, u *url.URL, id, ns string, m linux.Monitor) error {
	var args []string
	for k, vs := range u.Query() {
		args = append(args, k)
		if len(vs) > 0 {
			args = append(args, vs[0])
		}
	}
	cmd := exec.Command(u.Path, args...)
	cmd.Env = append(cmd.Env, "CONTAINER_ID="+id, "CONTAINER_NAMESPACE="+ns)
	outR, errR := p.outR, p.errR
	if outR == nil || errR == nil {
		// The logger protocol always has both fds.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer w.Close()
		if outR == nil {
			outR = r
		} else {
			errR = r
		}
		defer r.Close()
	}
	ready, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	ch, err := m.Start(cmd)
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start logging binary %s: %w", u.Path, err)
	}
	// The logger holds the read ends now.
	for _, f := range []**os.File{&p.outR, &p.errR} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	p.addCloser(func() error { return stopLogger(cmd, ch, m) })
	b := make([]byte, 1)
	n, err := ready.Read(b)
	if err != nil && err != io.EOF {
		return fmt.Errorf("wait for logging binary: %w", err)
	}
	if u.Scheme == "binary-v2" && n == 0 {
		return fmt.Errorf("logging binary %s exited before it was ready", u.Path)
	}
	return p.copyStdin("")
}

// stopLogger gives the logger time to flush (SIGTERM), then kills it.
func stopLogger(cmd *exec.Cmd, ch chan int, m linux.Monitor) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_, _ = m.Wait(cmd, ch)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(loggerTermTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}
