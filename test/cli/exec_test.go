package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runningContainer starts a detached sleeping container of b.
func (r *rc) runningContainer(b *bundle) specs.State {
	r.t.Helper()
	r.ok("run", "-d", "-b", b.dir, b.id)
	return r.waitStatus(b.id, specs.StateRunning)
}

func TestExecArgv(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	b.spec.Process.Env = append(b.spec.Process.Env, "FROM_SPEC=1")
	b.save()
	r.runningContainer(b)

	res := r.ok("exec", "--env", "FOO=bar", "--env", "BAZ=qux", "--cwd", "/tmp", "--user", "1000:1000",
		"--additional-gids", "10", "--additional-gids", "20",
		b.id, "sh", "-c", `echo $FOO $BAZ $FROM_SPEC; pwd; id -u; id -g; grep ^Groups: /proc/self/status`)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	want := []string{"bar qux 1", "/tmp", "1000", "1000"}
	if len(lines) != 5 {
		t.Fatalf("exec output: %q", res.stdout)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("exec line %d: got %q, want %q", i, lines[i], w)
		}
	}
	if got := strings.Fields(strings.TrimPrefix(lines[4], "Groups:")); strings.Join(got, ",") != "10,20" {
		t.Errorf("exec groups: got %v, want [10 20]", got)
	}

	// The process's exit status is exec's.
	if res := r.run("exec", b.id, "sh", "-c", "exit 5"); res.code != 5 {
		t.Errorf("exec exit code: %v", res)
	}
	// It runs in the container's namespaces: the pid namespace shows the
	// init as 1 and the exec'd shell as another pid.
	out := r.ok("exec", b.id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$").stdout
	if f := strings.Split(strings.TrimSpace(out), "\n"); len(f) != 2 || strings.TrimSpace(f[0]) != "sleep 1000" || f[1] == "1" {
		t.Errorf("exec pid namespace view: %q", out)
	}
	// It runs in the container's cgroup.
	var pids []int
	r.ok("exec", "-d", b.id, "sleep", "30")
	json.Unmarshal([]byte(r.ok("ps", "--format", "json", b.id).stdout), &pids)
	if len(pids) != 2 {
		t.Errorf("processes after exec -d: %v, want 2", pids)
	}
}

func TestExecProcessJSON(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.runningContainer(b)
	p := specs.Process{
		Args: []string{"sh", "-c", "echo $GREETING; pwd; id -u; umask"},
		Env:  []string{"PATH=/bin", "GREETING=hi"},
		Cwd:  "/work",
		User: specs.User{UID: 1000, GID: 1000},
	}
	umask := uint32(0o027)
	p.User.Umask = &umask
	path := filepath.Join(t.TempDir(), "process.json")
	data, _ := json.Marshal(p)
	os.WriteFile(path, data, 0o644)
	out := r.ok("exec", "-p", path, b.id).stdout
	if want := "hi\n/work\n1000\n0027\n"; out != want {
		t.Errorf("exec -p: got %q, want %q", out, want)
	}
	os.WriteFile(path, []byte("{"), 0o644)
	r.fails("exec", "-p", path, b.id)
}

func TestExecDetachedPidFile(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.runningContainer(b)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "-d", "--pid-file", pidFile, b.id, "sleep", "1000")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if !strings.HasPrefix(string(cmdline), "sleep\x001000") {
		t.Errorf("pid file names %d running %q", pid, cmdline)
	}
}

func TestExecRefused(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "true")
	r.ok("run", "--keep", "-b", b.dir, b.id)
	r.waitStatus(b.id, specs.StateStopped)
	res := r.run("exec", b.id, "true")
	if res.code == 0 {
		t.Errorf("exec in a stopped container succeeded")
	}
	checkErrorLine(t, res)
	r.fails("exec", "no-such-container", "true")

	c := newBundle(t, r, "sleep", "1000")
	r.runningContainer(c)
	r.fails("exec", c.id)                    // no command
	r.fails("exec", c.id, "/no/such/binary") // exec fails in the container
	r.fails("exec", "--cwd", "relative", c.id, "true")
	r.ok("pause", c.id)
	r.fails("exec", c.id, "true")
	r.ok("resume", c.id)
}

// --cap adds a capability for the exec'd process only.
func TestExecCap(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	caps := []string{"CAP_KILL"}
	b.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	b.spec.Process.NoNewPrivileges = false
	b.save()
	r.runningContainer(b)
	bnd := statusField(r.ok("exec", b.id, "cat", "/proc/self/status").stdout, "CapBnd")
	if bnd != "0000000000000020" {
		t.Errorf("CapBnd without --cap: %s", bnd)
	}
	st := r.ok("exec", "--cap", "CAP_CHOWN", b.id, "cat", "/proc/self/status").stdout
	if got := statusField(st, "CapEff"); got != "0000000000000021" {
		t.Errorf("CapEff with --cap CAP_CHOWN: %s, want 0000000000000021", got)
	}
	if got := statusField(st, "NoNewPrivs"); got != "0" {
		t.Errorf("NoNewPrivs without --no-new-privs: %q", got)
	}
	st = r.ok("exec", "--no-new-privs", b.id, "cat", "/proc/self/status").stdout
	if got := statusField(st, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs with --no-new-privs: %q", got)
	}
}
