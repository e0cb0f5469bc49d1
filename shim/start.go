package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"

	"github.com/railcar-oci/railcar/task"
)

// groupAnnotations put containers into one shim, in this order: railcar's
// own label, then the pod of the CRI plugin (one shim per pod, as runc's).
var groupAnnotations = []string{
	"io.containerd.railcar.v2.group",
	"io.kubernetes.cri.sandbox-id",
}

// start is the `start` action: it makes sure a shim serves the group of
// container f.id and prints its address. It runs with the bundle as working
// directory and must not write anything but the result to stdout (1.x and
// 2.x read stdout and stderr together).
func start(ctx context.Context, f *flags, stdin io.Reader, stdout io.Writer) error {
	b, err := readBootstrap(stdin, f.id, f.namespace)
	if err != nil {
		return err
	}
	grouping, err := groupOf(f.id)
	if err != nil {
		return err
	}
	socketDir := filepath.Join(defaults.DefaultStateDir, "s")
	if d := b.params.GetSocketDir(); d != "" {
		socketDir = d
	}
	address, err := startServer(ctx, f, socketDir, grouping, b.configPath())
	if err != nil {
		return err
	}
	// The server removes the socket on exit; a later `delete` of a killed
	// shim finds it here.
	if err := os.WriteFile("address", []byte(address), 0o600); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	out, err := b.result(address)
	if err != nil {
		return fmt.Errorf("encode bootstrap result: %w", err)
	}
	_, err = stdout.Write(out)
	return err
}

// groupOf reads the group of the container from the bundle's config.json.
func groupOf(id string) (string, error) {
	data, err := os.ReadFile("config.json")
	if err != nil {
		return "", fmt.Errorf("read bundle config: %w", err)
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", fmt.Errorf("parse bundle config: %w", err)
	}
	for _, a := range groupAnnotations {
		if g := spec.Annotations[a]; g != "" {
			return g, nil
		}
	}
	return id, nil
}

// startServer returns the address of the group's shim, starting it unless
// one already serves the group. The socket is a path under socketDir
// (root-only, 0600 in a 0700 directory), never an abstract socket: those are
// reachable from any process in the host's network namespace.
func startServer(ctx context.Context, f *flags, socketDir, grouping, configPath string) (_ string, retErr error) {
	address, err := shim.CreateSocketAddress(ctx, socketDir, f.address, grouping, false)
	if err != nil {
		return "", err
	}
	l, err := shim.NewSocket(address)
	if err != nil {
		if !shim.SocketEaddrinuse(err) {
			return "", fmt.Errorf("create shim socket: %w", err)
		}
		if shim.CanConnect(address) {
			// A shim serves the group (a pod) already.
			return address, nil
		}
		// Left over from a shim that was killed.
		if err := shim.RemoveSocket(address); err != nil {
			return "", fmt.Errorf("remove stale shim socket: %w", err)
		}
		if l, err = shim.NewSocket(address); err != nil {
			return "", fmt.Errorf("create shim socket: %w", err)
		}
	}
	defer func() {
		if retErr != nil {
			_ = shim.RemoveSocket(address)
		}
	}()
	sf, err := l.File()
	// The server keeps serving on the path: closing our listener must not
	// unlink it.
	l.SetUnlinkOnClose(false)
	l.Close()
	if err != nil {
		return "", err
	}
	defer sf.Close()

	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	args := []string{"-namespace", f.namespace, "-id", f.id, "-address", f.address}
	if f.debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir, _ = os.Getwd()
	cmd.Env = os.Environ()
	if configPath != "" {
		cmd.Env = append(cmd.Env, task.ConfigEnv+"="+configPath)
	}
	cmd.ExtraFiles = []*os.File{sf} // fd 3: the listening socket
	// Its own process group: signals containerd sends to `start` must not
	// reach the long-lived server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start shim server: %w", err)
	}
	// Take the pid before Release: Release sets Process.Pid to -1, and
	// kill(-1, …) signals every process on the machine.
	pid := cmd.Process.Pid
	if pid <= 0 {
		return "", fmt.Errorf("start shim server: bad pid %d", pid)
	}
	// The server outlives this process; release it without waiting.
	_ = cmd.Process.Release()
	if err := shim.AdjustOOMScore(pid); err != nil && !errors.Is(err, errdefs.ErrNotImplemented) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return "", fmt.Errorf("adjust shim OOM score: %w", err)
	}
	return address, nil
}
