// Package cgroup places containers in cgroups and manages their resources on
// cgroup v1, v2 and through systemd, on top of github.com/containerd/cgroups/v3.
//
// New and Load take the container id and the spec's linux.cgroupsPath:
//
//   - cgroupfs driver: an absolute path is taken below the hierarchy root(s);
//     a relative path is taken below the root as well (the runtime-determined
//     location the spec allows), so every later command of the same container
//     finds the same cgroup whatever cgroup that command itself runs in. An
//     empty path means /railcar/<id>.
//   - systemd driver: "slice:prefix:name", a transient scope prefix-name.scope
//     in slice. Empty means system.slice:railcar:<id>.
package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	cgroups "github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager is one container's cgroup.
type Manager interface {
	// Path is the cgroup path relative to the hierarchy root(s).
	Path() string
	// Paths maps each controller to the cgroup's absolute directory in its
	// hierarchy ("" is the v2 unified directory; on v1 named hierarchies
	// are keyed by their name, e.g. "systemd").
	Paths() map[string]string
	// Create creates the cgroup (every hierarchy, parents included) and
	// moves nothing, e.g. so that the v2 directory (Paths()[""]) can be
	// opened for clone3's CLONE_INTO_CGROUP. The systemd driver cannot:
	// its scope comes into being with its first process, at Apply.
	Create() error
	// Apply creates the cgroup if needed and moves pid into it.
	Apply(pid int) error
	// Set writes resources (create and update). It creates the cgroup if
	// needed, so it may run before or after Apply.
	Set(r *specs.LinuxResources) error
	// Freeze and Thaw pause and resume every process of the cgroup.
	Freeze() error
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Pids lists the processes in the cgroup (recursively).
	Pids() ([]int, error)
	// Stats returns runc's `events --stats` shape.
	Stats() (*Stats, error)
	// Metrics returns containerd's metrics type for the shim: a
	// *github.com/containerd/cgroups/v3/cgroup1/stats.Metrics on v1, a
	// *github.com/containerd/cgroups/v3/cgroup2/stats.Metrics on v2.
	Metrics() (any, error)
	// OOM returns a channel that receives a value on every OOM kill in
	// the cgroup until ctx is done or the cgroup is removed; then it is
	// closed.
	OOM(ctx context.Context) (<-chan struct{}, error)
	// Destroy removes the cgroup (it must be empty or become empty) in
	// every hierarchy. A cgroup that is already gone is no error.
	Destroy() error
}

// HostMode is how cgroups are mounted on this host.
type HostMode string

const (
	// ModeNone: no cgroup filesystem at /sys/fs/cgroup.
	ModeNone HostMode = "none"
	// ModeV1: cgroup v1 controllers only.
	ModeV1 HostMode = "v1"
	// ModeHybrid: cgroup v1 controllers plus a cgroup2 mount at
	// /sys/fs/cgroup/unified (controllers are managed on v1).
	ModeHybrid HostMode = "hybrid"
	// ModeV2: the unified hierarchy at /sys/fs/cgroup.
	ModeV2 HostMode = "v2"
)

// Mode reports how cgroups are mounted on this host. Resources are managed
// on v1 in ModeV1 and ModeHybrid, on v2 in ModeV2.
func Mode() HostMode {
	switch cgroups.Mode() {
	case cgroups.Legacy:
		return ModeV1
	case cgroups.Hybrid:
		return ModeHybrid
	case cgroups.Unified:
		return ModeV2
	}
	return ModeNone
}

// ErrNotExist is matched (errors.Is) by the errors of a loaded manager's
// methods when the container's cgroup does not exist (any more). Pids then
// returns no pids and Destroy succeeds, so a container whose cgroup is
// gone can still be listed and deleted.
var ErrNotExist = errors.New("cgroup does not exist")

// New returns the manager for a container's cgroupsPath, creating nothing
// yet (Apply or Set create the cgroup).
func New(id, cgroupsPath string, systemd bool) (Manager, error) {
	return open(id, cgroupsPath, systemd, false)
}

// Load returns the manager of an existing container's cgroup, for commands
// that run in a new process (update, pause, stats, delete). It does not
// check that the cgroup exists and never creates it: its methods fail with
// ErrNotExist when it is gone.
func Load(id, cgroupsPath string, systemd bool) (Manager, error) {
	return open(id, cgroupsPath, systemd, true)
}

func open(id, cgroupsPath string, systemd, load bool) (Manager, error) {
	if id == "" {
		return nil, errors.New("cgroup: empty container id")
	}
	if systemd {
		return openSystemd(id, cgroupsPath, load)
	}
	path, err := fsPath(id, cgroupsPath)
	if err != nil {
		return nil, err
	}
	switch mode := Mode(); mode {
	case ModeV1, ModeHybrid:
		return openV1(path, load)
	case ModeV2:
		return openV2(path, load)
	default:
		return nil, errors.New("cgroup: no cgroup filesystem mounted at /sys/fs/cgroup")
	}
}

// fsPath turns a cgroupfs-driver cgroupsPath into a clean absolute path
// below the hierarchy root.
func fsPath(id, p string) (string, error) {
	if p == "" {
		return "/railcar/" + id, nil
	}
	if parts := strings.Split(p, ":"); len(parts) == 3 && strings.HasSuffix(parts[0], ".slice") {
		return "", fmt.Errorf("cgroup: cgroupsPath %q is in systemd slice:prefix:name form; use the systemd cgroup driver", p)
	}
	// Joining with "/" before cleaning keeps ".." from climbing above the
	// hierarchy root.
	clean := filepath.Join("/", p)
	if clean == "/" {
		return "", fmt.Errorf("cgroup: cgroupsPath %q names the hierarchy root", p)
	}
	return clean, nil
}
