package integration

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
)

// These tests play containerd's part of the start handshake by hand, as
// each containerd version does it, against bin/containerd-shim-railcar-v2.
// They need root (the socket lives in /run/containerd/s) but no daemon.

func shimBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot, "bin", "containerd-shim-railcar-v2")
	if _, err := os.Stat(p); err != nil || os.Geteuid() != 0 {
		requireEnv(t)
		t.Fatalf("%s not built: %v", p, err)
	}
	return p
}

// fakeBundle is a bundle directory with a config.json and the `log` fifo
// containerd would read.
func fakeBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ok(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"ociVersion":"1.3.0","annotations":{}}`), 0o600))
	ok(t, syscall.Mkfifo(filepath.Join(dir, "log"), 0o600))
	go func() {
		f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_RDONLY, 0)
		if err == nil {
			_, _ = io.Copy(io.Discard, f)
			f.Close()
		}
	}()
	return dir
}

// runShim runs an action of the shim the way containerd does.
func runShim(t *testing.T, bundle string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(shimBinary(t), args...)
	cmd.Dir = bundle
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), "TTRPC_ADDRESS=/run/railcar-test/handshake-nothing.ttrpc", "MAX_SHIM_VERSION=2")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, isExit := err.(*exec.ExitError); isExit {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("shim %v: %v: %s", args, err, stderr)
	}
	return out
}

func dialShim(t *testing.T, address string) *ttrpc.Client {
	t.Helper()
	path, found := strings.CutPrefix(address, "unix://")
	if !found {
		t.Fatalf("address %q is not a unix:// path", address)
	}
	if !strings.HasPrefix(path, "/run/containerd/s/") {
		t.Errorf("socket %s: want a path under /run/containerd/s", path)
	}
	fi, err := os.Stat(path)
	ok(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: got %v, want 0600", fi.Mode().Perm())
	}
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	ok(t, err)
	c := ttrpc.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	return c
}

func startArgs(id string) []string {
	return []string{"-namespace", "handshake", "-address", "/run/railcar-test/handshake.sock", "-publish-binary", "/nonexistent", "-id", id, "start"}
}

// shutdown asks the shim to exit and checks that it removed its socket.
func shutdownShim(t *testing.T, address string, shutdown func() error) {
	t.Helper()
	if err := shutdown(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Errorf("shutdown: %v", err)
	}
	path := strings.TrimPrefix(address, "unix://")
	eventually(t, 10*time.Second, "the shim to remove its socket", func() bool {
		_, err := os.Stat(path)
		return os.IsNotExist(err)
	})
}

// containerd 1.6 and 1.7: nothing on stdin, a plain address back, task API v2.
func TestHandshakeLegacy(t *testing.T) {
	bundle := fakeBundle(t)
	id := uniqueID("legacy")
	out := string(runShim(t, bundle, nil, startArgs(id)...))
	if !strings.HasPrefix(out, "unix:///") {
		t.Fatalf("start printed %q, want a plain unix:// address", out)
	}
	c := taskv2.NewTTRPCTaskClient(dialShim(t, out))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Connect(ctx, &taskv2.ConnectRequest{ID: id})
	ok(t, err)
	if resp.ShimPid == 0 {
		t.Errorf("Connect: shim pid 0")
	}
	if _, err := c.State(ctx, &taskv2.StateRequest{ID: id}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("State of a container never created: got %v, want not found", err)
	}
	shutdownShim(t, out, func() error { _, err := c.Shutdown(ctx, &taskv2.ShutdownRequest{ID: id}); return err })
}

// containerd 1.7 with runtime options: a protobuf Any on stdin.
func TestHandshakeLegacyOptions(t *testing.T) {
	bundle := fakeBundle(t)
	id := uniqueID("legacyopts")
	opts, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: "/nonexistent/railcar.toml"})
	ok(t, err)
	in, err := proto.Marshal(opts)
	ok(t, err)
	out := string(runShim(t, bundle, in, startArgs(id)...))
	if !strings.HasPrefix(out, "unix:///") {
		t.Fatalf("start printed %q, want a plain unix:// address", out)
	}
	c := taskv2.NewTTRPCTaskClient(dialShim(t, out))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdownShim(t, out, func() error { _, err := c.Shutdown(ctx, &taskv2.ShutdownRequest{ID: id}); return err })
}

// containerd 2.3+: BootstrapParams in, BootstrapResult (version 3) out,
// task API v3; a second start of the same group finds the running shim.
func TestHandshakeBootstrap(t *testing.T) {
	bundle := fakeBundle(t)
	id := uniqueID("bootstrap")
	params := &bootapi.BootstrapParams{InstanceID: id, Namespace: "handshake", ContainerdGrpcAddress: "/run/railcar-test/handshake.sock"}
	in, err := proto.Marshal(params)
	ok(t, err)
	var res bootapi.BootstrapResult
	ok(t, proto.Unmarshal(runShim(t, bundle, in, startArgs(id)...), &res))
	if res.Version != 3 || res.Protocol != "ttrpc" || !strings.HasPrefix(res.Address, "unix:///") {
		t.Fatalf("bootstrap result: got %+v, want version 3, ttrpc, unix:// address", &res)
	}
	var again bootapi.BootstrapResult
	ok(t, proto.Unmarshal(runShim(t, bundle, in, startArgs(id)...), &again))
	if again.Address != res.Address {
		t.Errorf("second start: address %q, want the running shim's %q", again.Address, res.Address)
	}
	c := taskv3.NewTTRPCTaskClient(dialShim(t, res.Address))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Connect(ctx, &taskv3.ConnectRequest{ID: id})
	ok(t, err)
	if resp.ShimPid == 0 {
		t.Errorf("Connect: shim pid 0")
	}
	shutdownShim(t, res.Address, func() error { _, err := c.Shutdown(ctx, &taskv3.ShutdownRequest{ID: id}); return err })
}

func TestInfo(t *testing.T) {
	out := runShim(t, t.TempDir(), nil, "-info")
	var info types.RuntimeInfo
	ok(t, proto.Unmarshal(out, &info))
	if info.Name != "io.containerd.railcar.v2" {
		t.Errorf("name: got %q", info.Name)
	}
	if info.Features == nil || !strings.Contains(info.Features.GetTypeUrl(), "features") {
		t.Errorf("features: got %v", info.Features)
	}
}

// delete of a container the shim never made: containerd runs it after a
// shim died early. It must answer with a DeleteResponse, not fail.
func TestDeleteActionUnknown(t *testing.T) {
	bundle := t.TempDir()
	id := uniqueID("delete")
	out := runShim(t, bundle, nil, "-namespace", "handshake", "-address", "/run/railcar-test/handshake.sock",
		"-publish-binary", "/nonexistent", "-id", id, "-bundle", bundle, "delete")
	var resp taskv3.DeleteResponse
	ok(t, proto.Unmarshal(out, &resp))
	if resp.ExitStatus != 137 {
		t.Errorf("exit status: got %d, want 137", resp.ExitStatus)
	}
	if resp.ExitedAt == nil {
		t.Error("no exit time")
	}
}
