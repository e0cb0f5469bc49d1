package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// newConfiguredContainer creates a railcar container whose runtime options
// name config as ConfigPath.
func (e *env) newConfiguredContainer(name, config string, args ...string) client.Container {
	e.t.Helper()
	id := uniqueID(name)
	c, err := e.client.NewContainer(e.ctx, id,
		client.WithNewSnapshot(id+"-snap", e.image),
		client.WithNewSpec(oci.WithImageConfig(e.image), oci.WithProcessArgs(args...)),
		client.WithRuntime(railcarRuntime, &runtimeoptions.Options{ConfigPath: config}),
	)
	ok(e.t, err)
	e.t.Cleanup(func() { e.remove(c) })
	return c
}

// TestConfigPath: the shim config named by the runtime's ConfigPath sets the
// engine's state root and rc-init mode.
func TestConfigPath(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join("/run/railcar-test", uniqueID("state"))
	t.Cleanup(func() { os.RemoveAll(root) })
	config := filepath.Join(t.TempDir(), "railcar.toml")
	ok(t, os.WriteFile(config, []byte("state_root = \""+root+"\"\nrc_init = true\nlog_level = \"debug\"\n"), 0o600))
	c := e.newConfiguredContainer("config", config, "sleep", "1000")
	var s stdio
	task, exits := e.startTask(c, &s)
	if _, err := os.Stat(filepath.Join(root, testNamespace, c.ID())); err != nil {
		t.Errorf("engine state not under the configured root: %v", err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", task.Pid()))
	ok(t, err)
	if got := strings.Split(string(cmdline), "\x00")[0]; got != "rc-init" {
		t.Errorf("init process: got %q, want rc-init (rc_init = true)", got)
	}
	ok(t, task.Kill(e.ctx, syscall.SIGTERM))
	// rc-init forwards SIGTERM to the workload; busybox sleep dies of it.
	if got := e.finishTask(task, exits); got != 128+uint32(syscall.SIGTERM) {
		t.Errorf("exit status: got %d, want %d", got, 128+syscall.SIGTERM)
	}
}

func TestConfigPathError(t *testing.T) {
	e := newEnv(t)
	config := filepath.Join(t.TempDir(), "railcar.toml")
	ok(t, os.WriteFile(config, []byte("no_such_key = true\n"), 0o600))
	c := e.newConfiguredContainer("badconfig", config, "true")
	var s stdio
	_, err := c.NewTask(e.ctx, s.creator())
	if err == nil || !strings.Contains(err.Error(), config) {
		t.Errorf("create with a bad config: got %v, want an error naming %s", err, config)
	}
}
