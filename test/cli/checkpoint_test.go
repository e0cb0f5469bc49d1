package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkpoint and restore say clearly when criu is missing, and where criu
// fails (Debian 12's criu on a newer kernel) the error is criu's and names
// its log; the container runs on and a failed restore leaves nothing. The
// round trip itself runs in a qemu guest: make checkpoint-test.
func TestCheckpointErrors(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	r.runningContainer(b)
	img := t.TempDir()

	res := r.fails("--criu", "/nonexistent/criu", "checkpoint", "--image-path", img, b.id)
	if !strings.Contains(res.stderr, "needs criu") || !strings.Contains(res.stderr, "/nonexistent/criu") {
		t.Errorf("checkpoint without criu: %v", res)
	}
	r.waitStatus(b.id, specs.StateRunning)
	res = r.fails("--criu", "/nonexistent/criu", "restore", "-d", "--image-path", img, "-b", b.dir, b.id+"-r")
	if !strings.Contains(res.stderr, "needs criu") {
		t.Errorf("restore without criu: %v", res)
	}
	if res := r.run("state", b.id+"-r"); res.code == 0 {
		t.Errorf("a failed restore left a container: %v", res)
	}
	res = r.fails("restore", "-d", "--image-path", filepath.Join(img, "none"), "-b", b.dir, b.id+"-r")
	if !strings.Contains(res.stderr, "checkpoint images") {
		t.Errorf("restore without images: %v", res)
	}

	if _, err := exec.LookPath("criu"); err != nil {
		t.Skip("criu is not installed")
	}
	if err := exec.Command("criu", "check").Run(); err == nil {
		t.Skip("criu works on this kernel (the round trip is make checkpoint-test)")
	}
	work := t.TempDir()
	res = r.fails("checkpoint", "--image-path", img, "--work-path", work, b.id)
	log := filepath.Join(work, "dump.log")
	if !strings.Contains(res.stderr, "criu dump failed") || !strings.Contains(res.stderr, log) {
		t.Errorf("checkpoint where criu fails: %v", res)
	}
	if _, err := os.Stat(log); err != nil {
		t.Errorf("criu log: %v", err)
	}
	t.Logf("%s", strings.TrimSpace(res.stderr))
	r.waitStatus(b.id, specs.StateRunning)
}
