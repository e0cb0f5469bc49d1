package cli

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// --preserve-fds passes fds 3.. to the workload, and nothing else leaks.
func TestPreserveFds(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `echo via-fd3 >&3; cat <&4`)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	file := filepath.Join(t.TempDir(), "in")
	os.WriteFile(file, []byte("from-fd4\n"), 0o644)
	in, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "run", "--preserve-fds", "2", "-b", b.dir, b.id)
	cmd.ExtraFiles = []*os.File{pw, in}
	out, err := cmd.Output()
	pw.Close()
	if err != nil {
		t.Fatalf("run: %v: %s", err, out)
	}
	if piped, _ := io.ReadAll(pr); string(piped) != "via-fd3\n" {
		t.Errorf("fd 3: got %q", piped)
	}
	if string(out) != "from-fd4\n" {
		t.Errorf("fd 4: got %q", out)
	}

	// The host's view of a running workload's fds: exactly stdio and the
	// preserved ones, and stdio alone without --preserve-fds.
	for _, n := range []int{2, 0} {
		c := newBundle(t, r, "sleep", "1000")
		cmd := r.command(ctx, "run", "-d", "--preserve-fds", strconv.Itoa(n), "-b", c.dir, c.id)
		cmd.ExtraFiles = []*os.File{in, in}
		// stdio stays /dev/null: the detached workload keeps it open.
		if err := cmd.Run(); err != nil {
			t.Fatalf("run -d --preserve-fds %d: %v", n, err)
		}
		pid := r.waitStatus(c.id, specs.StateRunning).Pid
		waitExec(t, pid, "sleep")
		entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
		if err != nil {
			t.Fatal(err)
		}
		var fds []string
		for _, e := range entries {
			fds = append(fds, e.Name())
		}
		slices.SortFunc(fds, func(a, b string) int { return len(a) - len(b) })
		want := "0 1 2"
		if n == 2 {
			want = "0 1 2 3 4"
		}
		if got := strings.Join(fds, " "); got != want {
			t.Errorf("--preserve-fds %d: the workload has fds %s, want %s", n, got, want)
		}
		r.ok("delete", "-f", c.id)
	}

	// Asking for fds that are not open is an error.
	d := newBundle(t, r, "true")
	before := railcarProcesses()
	r.fails("run", "--preserve-fds", "5", "-b", d.dir, d.id)
	r.checkNoLeak(d, before)
}

// Sockets passed by systemd socket activation (LISTEN_FDS for railcar's
// pid) reach the workload as fds 3.. with LISTEN_FDS=n and LISTEN_PID=1.
func TestListenFds(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `echo "$LISTEN_FDS $LISTEN_PID"; echo via-listen >&3; echo via-preserved >&4`)
	p3r, p3w, _ := os.Pipe()
	p4r, p4w, _ := os.Pipe()
	defer p3r.Close()
	defer p4r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The shell execs railcar, so $$ is railcar's pid.
	script := `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script, railcarBin, "--root", r.root,
		"run", "--preserve-fds", "1", "-b", b.dir, b.id)
	cmd.ExtraFiles = []*os.File{p3w, p4w}
	out, err := cmd.Output()
	p3w.Close()
	p4w.Close()
	if err != nil {
		t.Fatalf("run: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "1 1" {
		t.Errorf("LISTEN_FDS LISTEN_PID: got %q, want \"1 1\"", got)
	}
	if got, _ := io.ReadAll(p3r); string(got) != "via-listen\n" {
		t.Errorf("fd 3: %q", got)
	}
	if got, _ := io.ReadAll(p4r); string(got) != "via-preserved\n" {
		t.Errorf("fd 4: %q", got)
	}
}

// --pid-file, relative to the caller's directory, names the init.
func TestPidFile(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "run", "-d", "--pid-file", "init.pid", "-b", b.dir, b.id)
	cmd.Dir = dir
	errf := tempFile(t)
	defer errf.Close()
	cmd.Stderr = errf // the detached container keeps a pipe open
	if err := cmd.Run(); err != nil {
		t.Fatalf("run -d: %v: %s", err, readBack(errf))
	}
	st := r.waitStatus(b.id, specs.StateRunning)
	data, err := os.ReadFile(filepath.Join(dir, "init.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != strconv.Itoa(st.Pid) {
		t.Errorf("pid file %q, state pid %d", got, st.Pid)
	}
}

// waitExec waits until pid runs the program named comm: "running" is
// reported once start returns, a moment before the init's execve.
func waitExec(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if strings.TrimSpace(string(got)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d runs %q, want %q", pid, got, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --pidfd-socket receives a pidfd of the init (create) and of an exec'd
// process (exec -d).
func TestPidfdSocket(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	sock, fds := consoleSocket(t) // any fd over SCM_RIGHTS
	r.ok("create", "--pidfd-socket", sock, "-b", b.dir, b.id)
	pidfd := receive(t, fds)
	defer pidfd.Close()
	checkPidfd(t, pidfd, r.state(b.id).Pid)
	r.ok("start", b.id)

	sock, fds = consoleSocket(t)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "-d", "--pidfd-socket", sock, "--pid-file", pidFile, b.id, "sleep", "1000")
	pidfd = receive(t, fds)
	defer pidfd.Close()
	data, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	checkPidfd(t, pidfd, pid)
}

// checkPidfd checks that f is a pidfd of pid.
func checkPidfd(t *testing.T, f *os.File, pid int) {
	t.Helper()
	fd := strconv.Itoa(int(f.Fd()))
	if link, _ := os.Readlink("/proc/self/fd/" + fd); link != "anon_inode:[pidfd]" {
		t.Errorf("received fd is %q, want a pidfd", link)
	}
	info, _ := os.ReadFile("/proc/self/fdinfo/" + fd)
	if got := statusField(string(info), "Pid"); got != strconv.Itoa(pid) {
		t.Errorf("pidfd of pid %s, want %d", got, pid)
	}
}
