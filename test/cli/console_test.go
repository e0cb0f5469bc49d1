package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleSocket listens where railcar sends the pty master and returns the
// master once received.
func consoleSocket(t *testing.T) (string, <-chan *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *os.File, 1)
	go func() {
		defer close(ch)
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4*4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return path, ch
}

// receive waits for the master sent on a console socket.
func receive(t *testing.T, masters <-chan *os.File) *os.File {
	t.Helper()
	select {
	case m := <-masters:
		if m == nil {
			t.Fatal("no pty master received on the console socket")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master received on the console socket within 10s")
	}
	return nil
}

// readAll reads f until EOF or EIO (the pty's end) or the timeout.
func readAll(f *os.File, timeout time.Duration) string {
	done := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, f)
		done <- buf.Bytes()
	}()
	select {
	case b := <-done:
		return string(b)
	case <-time.After(timeout):
		f.Close()
		return string(<-done)
	}
}

func TestConsoleSocket(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `echo hello-tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; tty`)
	b.spec.Process.Terminal = true
	b.save()
	sock, masters := consoleSocket(t)
	r.ok("create", "--console-socket", sock, "-b", b.dir, b.id)
	master := receive(t, masters)
	defer master.Close()
	if link, _ := os.Readlink("/proc/self/fd/" + itoa(int(master.Fd()))); link != "/dev/ptmx" && !strings.HasPrefix(link, "/dev/pts/ptmx") {
		t.Errorf("received fd is %q, want the pty multiplexer", link)
	}
	r.ok("start", b.id)
	out := readAll(master, 10*time.Second)
	for _, want := range []string{"hello-tty", "stdio-is-tty", "/dev/pts/"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in terminal output %q", want, out)
		}
	}
	r.waitStatus(b.id, specs.StateStopped)
}

func TestConsoleSocketRunDetached(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", "read x; echo got-$x")
	b.spec.Process.Terminal = true
	b.save()
	sock, masters := consoleSocket(t)
	r.ok("run", "-d", "--console-socket", sock, "-b", b.dir, b.id)
	master := receive(t, masters)
	defer master.Close()
	master.Write([]byte("ping\n"))
	if out := readAll(master, 10*time.Second); !strings.Contains(out, "got-ping") {
		t.Errorf("terminal output %q, want got-ping", out)
	}
}

// exec -t with a console socket gives the exec'd process its own pty.
func TestExecConsoleSocket(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.runningContainer(b)
	sock, masters := consoleSocket(t)
	r.ok("exec", "-d", "-t", "--console-socket", sock, b.id, "sh", "-c", "[ -t 1 ] && echo exec-tty")
	master := receive(t, masters)
	defer master.Close()
	if out := readAll(master, 10*time.Second); !strings.Contains(out, "exec-tty") {
		t.Errorf("exec terminal output %q", out)
	}
}

func TestTerminalFlagsRefused(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "true")
	b.spec.Process.Terminal = true
	b.save()
	before := railcarProcesses()
	// Detached with a terminal needs somewhere to send it.
	r.fails("create", "-b", b.dir, b.id)
	r.checkNoLeak(b, before)
	// A console socket without a terminal is a mistake.
	sock, _ := consoleSocket(t)
	c := newBundle(t, r, "true")
	r.fails("create", "--console-socket", sock, "-b", c.dir, c.id)
	r.checkNoLeak(c, before)
}

// In the foreground without --console-socket railcar proxies the pty to
// its own terminal and returns the workload's status.
func TestRunForegroundTerminal(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `[ -t 0 ] && echo is-a-tty; read x; echo got-$x; exit 4`)
	b.spec.Process.Terminal = true
	b.save()

	pty, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "run", "-b", b.dir, b.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, pty)
		out <- buf.String()
	}()
	time.Sleep(500 * time.Millisecond)
	pty.Write([]byte("pong\r"))
	cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 4 {
		t.Errorf("exit code %d, want 4", got)
	}
	var text string
	select {
	case text = <-out:
	case <-time.After(5 * time.Second):
		pty.Close()
		text = <-out
	}
	for _, want := range []string{"is-a-tty", "got-pong"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in %q", want, text)
		}
	}
}

// exec -t in the foreground proxies the pty like run does.
func TestExecForegroundTerminal(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.runningContainer(b)

	pty, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "exec", "-t", b.id, "sh", "-c", "[ -t 0 ] && echo exec-is-a-tty; exit 6")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, pty)
		out <- buf.String()
	}()
	cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 6 {
		t.Errorf("exit code %d, want 6", got)
	}
	var text string
	select {
	case text = <-out:
	case <-time.After(5 * time.Second):
		pty.Close()
		text = <-out
	}
	if !strings.Contains(text, "exec-is-a-tty") {
		t.Errorf("terminal output %q", text)
	}
	// Detached with a terminal needs a console socket.
	r.fails("exec", "-d", "-t", b.id, "true")
}
