package task

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/railcar-oci/railcar/linux"
)

// container is one task: an engine container, its init and its execs.
//
// containerd drives it as Create, Start, then any number of Exec/Start
// pairs, Kill, Wait (init exit), Delete of each exec, Delete of the init.
// The engine's container must outlive its init until that last Delete.
type container struct {
	id     string
	bundle string
	c      *linux.Container
	init   *process
	// ownPidNS: the container has a private pid namespace, so the kernel
	// kills its execs when the init exits.
	ownPidNS bool
	// rootfs is where the request's mounts were mounted ("" for none).
	rootfs  string
	stopOOM context.CancelFunc
	// restored: created from a checkpoint, the init runs already.
	restored bool

	mu    sync.Mutex
	execs map[string]*process

	// delMu serializes Deletes of the init: containerd may send two at
	// once (the CRI plugin's clean-up of a failed sandbox and its exit
	// monitor). The second waits for the first and gets its answer
	// (deleted): were it told NotFound while the first still ran,
	// containerd would shut the shim down and close the connection under
	// the first one's reply.
	delMu   sync.Mutex
	deleted *taskAPI.DeleteResponse
}

func (c *container) process(execID string) (*process, error) {
	if execID == "" {
		return c.init, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.execs[execID]
	if p == nil {
		return nil, fmt.Errorf("exec %s of container %s: %w", execID, c.id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (c *container) execList() []*process {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := make([]*process, 0, len(c.execs))
	for _, p := range c.execs {
		ps = append(ps, p)
	}
	return ps
}

// initExitedHook records the init's exit in the bundle for a later
// `delete` of a shim that was killed.
func (c *container) initExitedHook(ctx context.Context, e Exit) {
	if err := writeExit(c.bundle, e); err != nil {
		log.G(ctx).WithError(err).WithField("id", c.id).Warn("record exit status")
	}
}

func ownPidNamespace(spec *specs.Spec) bool {
	if spec == nil || spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return true
		}
	}
	return false
}

// mountRootfs mounts the request's rootfs (a snapshot: overlay, bind, …)
// on bundle/rootfs, where the bundle's config.json expects it.
func mountRootfs(bundle string, ms []mount.Mount) (string, error) {
	if len(ms) == 0 {
		return "", nil
	}
	target := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(target, 0o711); err != nil {
		return "", fmt.Errorf("create rootfs dir: %w", err)
	}
	if err := mount.All(ms, target); err != nil {
		_ = mount.UnmountMounts(ms, target, 0)
		return "", fmt.Errorf("mount rootfs on %s: %w", target, err)
	}
	return target, nil
}

func unmountRootfs(ctx context.Context, target string) error {
	if target == "" {
		return nil
	}
	if err := mount.UnmountRecursive(target, 0); err != nil {
		log.G(ctx).WithError(err).WithField("rootfs", target).Warn("unmount rootfs")
		return fmt.Errorf("unmount rootfs %s: %w", target, err)
	}
	return nil
}
