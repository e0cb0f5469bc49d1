package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/railcar-oci/railcar/task"
)

// deleteAction is the `delete` action: containerd runs it when the shim of
// a task died. It deletes the container through the engine (killing what
// still runs), unmounts the rootfs and prints the init's exit as a
// DeleteResponse (the same bytes in task API v2 and v3).
func deleteAction(ctx context.Context, f *flags, stdout io.Writer) error {
	bundle := f.bundle
	if bundle == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		bundle = wd
	}
	res, err := task.Cleanup(ctx, bundle, f.namespace, f.id)
	if err != nil {
		return fmt.Errorf("clean up container %s: %w", f.id, err)
	}
	// A dead shim leaves its socket behind; a live one (a pod's, still
	// serving other containers) keeps it.
	if data, err := os.ReadFile(filepath.Join(bundle, "address")); err == nil && len(data) > 0 {
		if address := string(data); !shim.CanConnect(address) {
			_ = shim.RemoveSocket(address)
		}
	}
	out, err := proto.Marshal(&taskAPI.DeleteResponse{
		Pid:        uint32(res.Pid),
		ExitStatus: uint32(res.ExitStatus),
		ExitedAt:   protobuf.ToTimestamp(res.ExitedAt),
	})
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
