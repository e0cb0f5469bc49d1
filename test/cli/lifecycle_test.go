package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunExitCode(t *testing.T) {
	integration(t)
	r := newRC(t)
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"echo out; echo err >&2; exit 3", 3},
	} {
		b := newBundle(t, r, "sh", "-c", tc.script)
		res := r.runContainer(b)
		if res.code != tc.want {
			t.Errorf("%q: got exit %d, want %d\n%v", tc.script, res.code, tc.want, res)
		}
		r.checkNoLeak(b, nil)
	}
}

func TestRunStdio(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", "read line; echo got:$line; echo oops >&2")
	res := r.runIn([]byte("hello\n"), "run", "-b", b.dir, b.id)
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	if got, want := res.stdout, "got:hello\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}
	if got, want := res.stderr, "oops\n"; got != want {
		t.Errorf("stderr: got %q, want %q", got, want)
	}
}

// A workload killed by a signal gives 128+signal, as in a shell.
func TestRunKilledExitCode(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "100")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "run", "-b", b.dir, b.id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(b.id, specs.StateRunning)
	r.ok("kill", b.id, "KILL")
	err := cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 128+9 {
		t.Errorf("exit code: got %d (%v), want 137", got, err)
	}
	r.checkNoLeak(b, nil)
}

// In the foreground railcar forwards the signals it gets to the workload.
func TestRunForwardsSignals(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `trap "exit 42" USR1; echo ready; while true; do sleep 0.1; done`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "run", "-b", b.dir, b.id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("workload did not start: %q %v", buf, err)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 42 {
		t.Errorf("exit code: got %d, want 42 (the trap's)", got)
	}
}

// create, start, state, kill, delete walk the OCI state machine as runc does.
func TestLifecycle(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `trap "exit 0" TERM; while true; do sleep 0.1; done`)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("create", "--bundle", b.dir, "--pid-file", pidFile, b.id)

	st := r.state(b.id)
	if st.Status != specs.StateCreated {
		t.Fatalf("after create: status %q, want created", st.Status)
	}
	if st.ID != b.id || st.Bundle != b.dir || st.Pid <= 0 || st.Version != specs.Version {
		t.Errorf("state after create: %+v", st)
	}
	pid, _ := os.ReadFile(pidFile)
	if got := strings.TrimSpace(string(pid)); got != strconv.Itoa(st.Pid) {
		t.Errorf("pid file: got %q, want %d", got, st.Pid)
	}
	r.fails("create", "--bundle", b.dir, b.id) // the id is taken

	r.ok("start", b.id)
	r.waitStatus(b.id, specs.StateRunning)
	r.fails("start", b.id)  // already running
	r.fails("delete", b.id) // running, no -f
	if st := r.state(b.id); st.Status != specs.StateRunning {
		t.Fatalf("a refused delete changed the state: %q", st.Status)
	}

	r.ok("kill", b.id) // SIGTERM by default
	st = r.waitStatus(b.id, specs.StateStopped)
	if st.Pid != 0 {
		t.Errorf("stopped container: pid %d, want 0", st.Pid)
	}
	r.fails("kill", b.id, "KILL") // not running
	r.fails("start", b.id)        // stopped
	r.ok("delete", b.id)
	r.fails("state", b.id)
	r.fails("delete", b.id)
	r.ok("delete", "-f", b.id) // -f on a missing container succeeds, as in runc
	r.checkNoLeak(b, nil)
}

// A created container is deleted without -f; its process never runs.
func TestDeleteCreated(t *testing.T) {
	integration(t)
	r := newRC(t)
	dir := t.TempDir()
	b := newBundle(t, r, "sh", "-c", "touch /data/ran")
	b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind"}})
	b.save()
	r.ok("create", "-b", b.dir, b.id)
	r.ok("delete", b.id)
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the process of a deleted created container ran")
	}
	r.checkNoLeak(b, nil)
}

func TestDeleteForceRunning(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.ok("run", "-d", "-b", b.dir, b.id)
	pid := r.state(b.id).Pid
	r.ok("delete", "-f", b.id)
	if alive(pid) {
		t.Errorf("init %d still alive after delete -f", pid)
	}
	r.checkNoLeak(b, nil)
}

func TestRunDetachedAndKeep(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	res := r.ok("run", "-d", "-b", b.dir, b.id)
	if res.stdout != "" {
		t.Errorf("run -d printed %q", res.stdout)
	}
	r.waitStatus(b.id, specs.StateRunning)
	r.ok("delete", "-f", b.id)

	k := newBundle(t, r, "true")
	r.ok("run", "--keep", "-b", k.dir, k.id)
	r.waitStatus(k.id, specs.StateStopped)
	r.ok("delete", k.id)
	r.checkNoLeak(k, nil)
}

func TestKillSignals(t *testing.T) {
	integration(t)
	r := newRC(t)
	// The trap's exit status records which signal arrived.
	script := `trap "echo USR1 >> /data/got" USR1; trap "echo HUP >> /data/got" HUP; trap "echo INT >> /data/got" INT; trap "exit 0" TERM; while true; do sleep 0.05; done`
	dir := t.TempDir()
	b := newBundle(t, r, "sh", "-c", script)
	b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind"}})
	b.save()
	r.ok("run", "-d", "-b", b.dir, b.id)
	r.waitStatus(b.id, specs.StateRunning)
	time.Sleep(200 * time.Millisecond) // let the traps be set
	// One signal at a time: the next goes once the trap of the last has
	// written its line, so that the shell never has two pending at once.
	for i, sig := range []string{"USR1", "SIGHUP", "2", "sigusr1"} {
		r.ok("kill", b.id, sig)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			got, _ := os.ReadFile(filepath.Join(dir, "got"))
			if strings.Count(string(got), "\n") > i {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.fails("kill", b.id, "NOSUCHSIG")
	r.ok("kill", b.id, "15")
	r.waitStatus(b.id, specs.StateStopped)
	got, _ := os.ReadFile(filepath.Join(dir, "got"))
	if want := "USR1\nHUP\nINT\nUSR1\n"; string(got) != want {
		t.Errorf("signals received: got %q, want %q", got, want)
	}
}

func TestKillAll(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	r.ok("run", "-d", "-b", b.dir, b.id)
	r.waitStatus(b.id, specs.StateRunning)
	var pids []int
	for i := 0; i < 50 && len(pids) < 3; i++ {
		json.Unmarshal([]byte(r.ok("ps", "--format", "json", b.id).stdout), &pids)
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) < 3 {
		t.Fatalf("ps: %v, want 3 processes", pids)
	}
	r.ok("kill", "--all", b.id, "KILL")
	r.waitStatus(b.id, specs.StateStopped)
	for _, p := range pids {
		if alive(p) {
			t.Errorf("process %d survived kill --all", p)
		}
	}
}

func TestPauseResume(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.ok("run", "-d", "-b", b.dir, b.id)
	r.waitStatus(b.id, specs.StateRunning)
	r.ok("pause", b.id)
	st := r.state(b.id)
	if st.Status != "paused" {
		t.Fatalf("after pause: %q", st.Status)
	}
	stat, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(st.Pid), "stat"))
	if f := strings.Fields(string(stat)); len(f) < 3 || (f[2] != "D" && f[2] != "S") {
		t.Logf("paused init state: %v", f)
	}
	r.fails("pause", b.id)
	r.ok("resume", b.id)
	r.waitStatus(b.id, specs.StateRunning)
	r.fails("resume", b.id)
}

func TestListAndPs(t *testing.T) {
	integration(t)
	r := newRC(t)
	if got := r.ok("list", "-q").stdout; got != "" {
		t.Errorf("list -q of an empty root: %q", got)
	}
	b := newBundle(t, r, "sleep", "1000")
	c := newBundle(t, r, "sleep", "1000")
	r.ok("run", "-d", "-b", b.dir, b.id)
	r.ok("create", "-b", c.dir, c.id)
	r.waitStatus(b.id, specs.StateRunning)

	ids := strings.Fields(r.ok("list", "-q").stdout)
	if len(ids) != 2 {
		t.Errorf("list -q: %v", ids)
	}
	table := r.ok("list").stdout
	if !strings.HasPrefix(table, "ID") || !strings.Contains(table, "STATUS") ||
		!strings.Contains(table, b.id) || !strings.Contains(table, "running") || !strings.Contains(table, "created") {
		t.Errorf("list table:\n%s", table)
	}
	var states []struct {
		ID     string `json:"id"`
		Pid    int    `json:"pid"`
		Status string `json:"status"`
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal([]byte(r.ok("list", "--format", "json").stdout), &states); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, s := range states {
		found[s.ID] = s.Status
	}
	if found[b.id] != "running" || found[c.id] != "created" {
		t.Errorf("list json: %+v", states)
	}
	r.fails("list", "--format", "yaml")

	pid := r.state(b.id).Pid
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "--format", "json", b.id).stdout), &pids); err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != pid {
		t.Errorf("ps json: %v, want [%d]", pids, pid)
	}
	ps := r.ok("ps", b.id).stdout
	lines := strings.Split(strings.TrimSpace(ps), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[1], "sleep") {
		t.Errorf("ps table:\n%s", ps)
	}
	ps = r.ok("ps", b.id, "-o", "pid,comm").stdout
	if !strings.Contains(ps, strconv.Itoa(pid)) {
		t.Errorf("ps -o pid,comm:\n%s", ps)
	}
}

// A created container can be killed (its process never ran) and is then
// stopped.
func TestKillCreated(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.ok("create", "-b", b.dir, b.id)
	r.ok("kill", b.id, "KILL")
	r.waitStatus(b.id, specs.StateStopped)
	r.ok("delete", b.id)
	r.checkNoLeak(b, nil)
}

// A paused container is not deleted without -f; with -f it goes.
func TestDeletePaused(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.ok("run", "-d", "-b", b.dir, b.id)
	r.waitStatus(b.id, specs.StateRunning)
	r.ok("pause", b.id)
	r.fails("delete", b.id)
	r.ok("delete", "--force", b.id)
	r.checkNoLeak(b, nil)
}

// --no-pivot (chroot after MS_MOVE, for a rootfs on a ramdisk) still runs
// the container in its rootfs; --no-new-keyring is accepted.
func TestNoPivotNoNewKeyring(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", "cat /etc/secret; echo $$")
	for _, flags := range [][]string{{"--no-pivot"}, {"--no-new-keyring"}} {
		res := r.runContainer(b, flags...)
		if res.code != 0 || res.stdout != "secret\n1\n" {
			t.Errorf("run %v: %v", flags, res)
		}
		r.checkNoLeak(b, nil)
	}
}
