// Package integration drives a real containerd 2.4 with its Go client to
// pin down the behaviour of containerd-shim-railcar-v2. Runtime-agnostic
// scenarios run as subtests for io.containerd.railcar.v2 and for
// io.containerd.runc.v2, the yardstick.
//
// Prerequisites: root, the private containerd of test/containerd.sh (started
// here when it is installed but not running) and bin/containerd-shim-railcar-v2
// (built here when missing). Without containerd the tests skip, unless
// RAILCAR_REQUIRE_INTEGRATION is set (CI), where they fail.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

const (
	railcarRuntime = "io.containerd.railcar.v2"
	runcRuntime    = "io.containerd.runc.v2"
	testNamespace  = "default"
	toolsDir       = "/opt/railcar-test/bin"
)

var (
	repoRoot  string
	imageName string
	address   string
	// setupErr is why the environment is unusable ("" when it is fine).
	setupErr string
	// started: this test binary started containerd and stops it at the end.
	started bool
)

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	setupErr = setup()
	code := m.Run()
	if started {
		_ = exec.Command(filepath.Join(repoRoot, "test", "containerd.sh"), "stop").Run()
	}
	os.Exit(code)
}

func setup() string {
	if os.Geteuid() != 0 {
		return "integration tests need root"
	}
	if _, err := os.Stat(filepath.Join(toolsDir, "containerd")); err != nil {
		return fmt.Sprintf("containerd is not installed in %s (run `make setup`)", toolsDir)
	}
	shimBin := filepath.Join(repoRoot, "bin", "containerd-shim-railcar-v2")
	if _, err := os.Stat(shimBin); err != nil {
		cmd := exec.Command("go", "build", "-tags", "seccomp", "-o", shimBin, "./cmd/containerd-shim-railcar-v2")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Sprintf("build the shim: %v: %s", err, out)
		}
	}
	script := filepath.Join(repoRoot, "test", "containerd.sh")
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		if err := exec.Command(script, "status").Run(); err != nil {
			if out, err := exec.Command(script, "start").CombinedOutput(); err != nil {
				return fmt.Sprintf("start containerd: %v: %s", err, out)
			}
			started = true
		}
		out, err := exec.Command(script, "env").Output()
		if err != nil {
			return fmt.Sprintf("containerd.sh env: %v", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
			if !ok || k == "PATH" {
				continue
			}
			os.Setenv(k, strings.Trim(v, "'\""))
		}
	}
	address = os.Getenv("CONTAINERD_ADDRESS")
	imageName = os.Getenv("RAILCAR_TEST_IMAGE")
	if imageName == "" {
		imageName = "docker.io/library/busybox:railcar-test"
	}
	return ""
}

// requireEnv skips (or fails under RAILCAR_REQUIRE_INTEGRATION) when the
// environment is missing.
func requireEnv(t *testing.T) {
	t.Helper()
	if setupErr == "" {
		return
	}
	if os.Getenv("RAILCAR_REQUIRE_INTEGRATION") != "" {
		t.Fatalf("integration prerequisites missing: %s", setupErr)
	}
	t.Skipf("integration prerequisites missing: %s (set RAILCAR_REQUIRE_INTEGRATION to fail instead)", setupErr)
}

// env is one test's connection to containerd.
type env struct {
	t      *testing.T
	ctx    context.Context
	client *containerd.Client
	image  containerd.Image
}

func newEnv(t *testing.T) *env {
	t.Helper()
	requireEnv(t)
	c, err := containerd.New(address, containerd.WithDefaultNamespace(testNamespace), containerd.WithTimeout(10*time.Second))
	ok(t, err)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), testNamespace), 3*time.Minute)
	t.Cleanup(cancel)
	img, err := c.GetImage(ctx, imageName)
	ok(t, err)
	unpacked, err := img.IsUnpacked(ctx, "overlayfs")
	ok(t, err)
	if !unpacked {
		ok(t, img.Unpack(ctx, "overlayfs"))
	}
	return &env{t: t, ctx: ctx, client: c, image: img}
}

// runtimes runs f as a subtest for railcar and for runc.
func runtimes(t *testing.T, f func(t *testing.T, runtime string)) {
	for _, r := range []struct{ name, runtime string }{{"railcar", railcarRuntime}, {"runc", runcRuntime}} {
		t.Run(r.name, func(t *testing.T) { f(t, r.runtime) })
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}
