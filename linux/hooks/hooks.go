// Package hooks runs OCI lifecycle hooks (prestart, createRuntime,
// createContainer, startContainer, poststart, poststop).
//
// A hook is run exactly as the spec describes it: hook.Path is executed with
// hook.Args as its argv (Args[0] is argv[0]) and hook.Env as its whole
// environment (nothing is inherited), and the container's state JSON on its
// standard input. Which hooks run when, and in which namespaces, is the
// caller's business: Run only executes a list in order and stops at the first
// failure.
package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Starter runs helper processes for a caller that owns wait4 (same method set
// as linux.Monitor); nil means cmd.Start/cmd.Wait.
type Starter interface {
	Start(cmd *exec.Cmd) (chan int, error)
	Wait(cmd *exec.Cmd, ch chan int) (int, error)
}

// maxOutput is how much of a failing hook's stderr (or stdout) goes into the
// error: enough for a message, not a log.
const maxOutput = 4096

// Run runs hooks in order with the OCI state JSON on stdin, hook.Path, Args
// and Env exactly (Args[0] is argv[0]; a nil Env is an empty environment),
// honouring Timeout (the hook is killed on expiry, error "hook X timed out
// after Ns"). The first failure stops the run and returns an error naming the
// hook, its exit status and its stderr (trimmed; stdout when stderr is empty).
func Run(hooks []specs.Hook, state *specs.State, s Starter) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("marshal state for hooks: %w", err)
	}
	for i := range hooks {
		if err := runOne(&hooks[i], data, s); err != nil {
			return err
		}
	}
	return nil
}

func runOne(h *specs.Hook, state []byte, s Starter) error {
	name := fmt.Sprintf("hook %q", h.Path)
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("%s: path must be absolute", name)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("%s: timeout must be greater than zero, got %d", name, *h.Timeout)
	}

	// Stdin, stdout and stderr are memory files rather than pipes: no
	// copying goroutine has to be waited for (a Starter that reaps the hook
	// itself may never call cmd.Wait), a hook that does not read its stdin
	// cannot block us, and a hook that leaves a daemon holding its stderr
	// open cannot keep us waiting for EOF.
	stdin, err := memFile("hook-state", state)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer stdin.Close()
	stdout, err := memFile("hook-stdout", nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer stdout.Close()
	stderr, err := memFile("hook-stderr", nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer stderr.Close()

	env := h.Env
	if env == nil {
		// exec.Cmd inherits our environment for a nil Env; the spec
		// gives the hook exactly the env it lists.
		env = []string{}
	}
	cmd := &exec.Cmd{
		Path:   h.Path,
		Args:   h.Args,
		Env:    env,
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
	}
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}

	status, timedOut, err := startAndWait(cmd, s, h.Timeout)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if timedOut {
		return fmt.Errorf("%s timed out after %ds", name, *h.Timeout)
	}
	if status != 0 {
		out := tail(stderr)
		if out == "" {
			out = tail(stdout)
		}
		if out == "" {
			return fmt.Errorf("%s failed: exit status %d", name, status)
		}
		return fmt.Errorf("%s failed: exit status %d: %s", name, status, out)
	}
	return nil
}

// startAndWait starts cmd through s (or directly) and waits for it, killing
// it when timeout (seconds) expires. It returns the exit status in the
// shell's convention (128+signal for a killed process).
func startAndWait(cmd *exec.Cmd, s Starter, timeout *int) (status int, timedOut bool, err error) {
	var ch chan int
	if s != nil {
		ch, err = s.Start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return -1, false, fmt.Errorf("start: %w", err)
	}

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if s != nil {
			r.status, r.err = s.Wait(cmd, ch)
		} else {
			r.status, r.err = waitStatus(cmd)
		}
		done <- r
	}()

	var expired <-chan time.Time
	if timeout != nil {
		t := time.NewTimer(time.Duration(*timeout) * time.Second)
		defer t.Stop()
		expired = t.C
	}
	select {
	case r := <-done:
		if r.err != nil {
			return -1, false, fmt.Errorf("wait: %w", r.err)
		}
		return r.status, false, nil
	case <-expired:
		// The process is not reaped until the wait above returns, so
		// its pid cannot have been reused: the kill hits the hook.
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return -1, true, fmt.Errorf("kill after timeout: %w", err)
		}
		<-done
		return -1, true, nil
	}
}

// waitStatus waits with cmd.Wait and maps the result to a status.
func waitStatus(cmd *exec.Cmd) (int, error) {
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return -1, err
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return cmd.ProcessState.ExitCode(), nil
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// memFile returns an anonymous memory file holding data, positioned at 0.
func memFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("seek %s: %w", name, err)
		}
	}
	return f, nil
}

// tail returns the last maxOutput bytes written to f, trimmed.
func tail(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-maxOutput, 0)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	return strings.TrimSpace(string(buf[:n]))
}
