package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The containerd of test/containerd.sh and the image of test/image.
const (
	ctrBin     = "/opt/railcar-test/bin/ctr"
	ctrSocket  = "/run/railcar-test/containerd/containerd.sock"
	shimImage  = "docker.io/library/busybox:railcar-test"
	ctrTimeout = 30 * time.Second
)

// ctr runs ctr against the test containerd and returns its combined
// output without containerd's cgroup v1 deprecation warnings.
func ctr(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctrBin, append([]string{"--address", ctrSocket}, args...)...)
	out, err := cmd.CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.Contains(l, "DEPRECATION") && l != "" {
			lines = append(lines, l)
		}
	}
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return strings.Join(lines, "\n"), code
}

// containerdReady checks for the test containerd and its image.
func containerdReady(t *testing.T) {
	t.Helper()
	var missing string
	if _, err := os.Stat(ctrBin); err != nil {
		missing = ctrBin + " (make setup)"
	} else if out, code := ctr(t, "images", "ls", "-q"); code != 0 {
		missing = "a running test containerd at " + ctrSocket + " (test/containerd.sh start)"
	} else if !strings.Contains(out, shimImage) {
		missing = "the image " + shimImage + " (make image)"
	}
	if missing == "" {
		return
	}
	reason := "missing prerequisite: " + missing
	if os.Getenv("RAILCAR_REQUIRE_INTEGRATION") != "" {
		t.Fatal(reason)
	}
	t.Skip(reason + " (set RAILCAR_REQUIRE_INTEGRATION=1 to fail instead)")
}

// containerd's own runc shim with railcar as its binary, as docker 20.10
// uses a runtime added with --add-runtime: run, exec, pause, ps, metrics,
// kill and a terminal.
func TestContainerdRuncShim(t *testing.T) {
	integration(t)
	containerdReady(t)
	id := fmt.Sprintf("railcar-cli-shim-%d", os.Getpid())
	rt := []string{"--runtime", "io.containerd.runc.v2", "--runc-binary", railcarBin}
	t.Cleanup(func() {
		ctr(t, "task", "kill", "-s", "KILL", id)
		time.Sleep(200 * time.Millisecond)
		ctr(t, "task", "rm", "-f", id)
		ctr(t, "containers", "rm", id)
	})

	run := append(append([]string{"run", "--rm"}, rt...), shimImage, id+"-fg", "sh", "-c", "echo hello-from-railcar; exit 3")
	if out, code := ctr(t, run...); code != 3 || !strings.Contains(out, "hello-from-railcar") {
		t.Errorf("ctr run: exit %d, output %q", code, out)
	}

	run = append(append([]string{"run", "-d"}, rt...), shimImage, id, "sleep", "1000")
	if out, code := ctr(t, run...); code != 0 {
		t.Fatalf("ctr run -d: exit %d: %s", code, out)
	}
	if out, code := ctr(t, "task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-ok; exit 2"); code != 2 || !strings.Contains(out, "exec-ok") {
		t.Errorf("ctr task exec: exit %d, output %q", code, out)
	}
	if out, code := ctr(t, "task", "pause", id); code != 0 {
		t.Errorf("pause: %s", out)
	}
	if out, _ := ctr(t, "task", "ls"); !strings.Contains(out, "PAUSED") {
		t.Errorf("task ls after pause: %s", out)
	}
	if out, code := ctr(t, "task", "resume", id); code != 0 {
		t.Errorf("resume: %s", out)
	}
	if out, code := ctr(t, "task", "ps", id); code != 0 || len(strings.Split(out, "\n")) < 2 {
		t.Errorf("task ps: %s", out)
	}
	if out, code := ctr(t, "task", "metrics", id); code != 0 || !strings.Contains(out, "memory") {
		t.Errorf("task metrics: %s", out)
	}
	if out, code := ctr(t, "task", "kill", "-s", "KILL", id); code != 0 {
		t.Errorf("kill: %s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := ctr(t, "task", "ls")
		if strings.Contains(out, "STOPPED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task did not stop: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, code := ctr(t, "task", "rm", id); code != 0 {
		t.Errorf("task rm: %s", out)
	}
}
