package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const unifiedMountpoint = "/sys/fs/cgroup"

// v2 manages a cgroup in the unified hierarchy. containerd's cgroup2
// package lists processes, reads stats and compiles the eBPF device
// program; control files are written here (see set_v2.go for why).
type v2 struct {
	root string // mountpoint of the unified hierarchy
	path string // group path below root
	dir  string // root+path
	mgr  *cgroup2.Manager
	// delegate makes ensure enable the parents' controllers for their
	// children (always, except in tests on a hybrid host's unified tree,
	// where enabling one would keep it from being mounted on v1).
	delegate bool

	mu sync.Mutex
	// mayCreate: as in v1, only a manager from New (until Destroy)
	// creates the cgroup.
	mayCreate bool
	created   bool
}

var _ Manager = (*v2)(nil)

func openV2(path string, load bool) (*v2, error) {
	return openV2At(unifiedMountpoint, path, load)
}

// openV2At is openV2 on the unified hierarchy mounted at root (on a hybrid
// host that is /sys/fs/cgroup/unified, which the tests use).
func openV2At(root, path string, load bool) (*v2, error) {
	mgr, err := cgroup2.Load(path, cgroup2.WithMountpoint(root))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	return &v2{root: root, path: path, dir: filepath.Join(root, path), mgr: mgr, delegate: true, mayCreate: !load}, nil
}

func (m *v2) Path() string { return m.path }

func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

// ensure creates the cgroup and its missing parents. Each ancestor hands
// every controller it has down to its children (cgroup.subtree_control),
// one controller per write so that one refusal does not block the others;
// the container's own cgroup is a leaf and enables nothing (no internal
// processes). An existing cgroup, e.g. a pod's, is joined as it is.
func (m *v2) ensure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mayCreate {
		if !exists(m.dir) {
			return fmt.Errorf("cgroup %s: %w", m.dir, ErrNotExist)
		}
		return nil
	}
	if m.created {
		return nil
	}
	cur := m.root
	for _, part := range strings.Split(strings.TrimPrefix(m.path, "/"), "/") {
		if avail, err := readFile(cur, "cgroup.controllers"); err == nil && m.delegate {
			enabled, _ := readFile(cur, "cgroup.subtree_control")
			for _, c := range strings.Fields(avail) {
				if !slices.Contains(strings.Fields(enabled), c) {
					_ = writeFile(cur, "cgroup.subtree_control", "+"+c)
				}
			}
		}
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", cur, err)
		}
	}
	m.created = true
	return nil
}

func (m *v2) Create() error { return m.ensure() }

func (m *v2) Apply(pid int) error {
	if err := m.ensure(); err != nil {
		return err
	}
	if err := m.mgr.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("move pid %d to cgroup %s: %w", pid, m.dir, err)
	}
	return nil
}

func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := m.ensure(); err != nil {
		return err
	}
	if err := m.check(r); err != nil {
		return err
	}
	return m.set(r)
}

// Freeze writes cgroup.freeze and waits for cgroup.events to report the
// cgroup frozen (the kernel freezes tasks asynchronously).
func (m *v2) Freeze() error { return m.freeze("1") }

func (m *v2) Thaw() error { return m.freeze("0") }

func (m *v2) freeze(v string) error {
	if err := m.ensure(); err != nil {
		return err
	}
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		ev, err := readKV(m.dir, "cgroup.events")
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if fmt.Sprint(ev["frozen"]) == v {
			return nil
		}
		if time.Now().After(deadline) {
			if v == "1" {
				_ = writeFile(m.dir, "cgroup.freeze", "0")
			}
			return fmt.Errorf("cgroup.freeze=%s on %s: not reached after 2s", v, m.dir)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *v2) Frozen() (bool, error) {
	s, err := readFile(m.dir, "cgroup.freeze")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("read freezer state: %w", err)
	}
	return s == "1", nil
}

func (m *v2) Pids() ([]int, error) {
	procs, err := m.mgr.Procs(true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", m.dir, err)
	}
	pids := make([]int, 0, len(procs))
	for _, p := range procs {
		pids = append(pids, int(p))
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

func (m *v2) Metrics() (any, error) { return m.metrics() }

func (m *v2) Stats() (*Stats, error) {
	mt, err := m.metrics()
	if err != nil {
		return nil, err
	}
	return statsFromV2(mt, m.dir), nil
}

func (m *v2) metrics() (*v2Metrics, error) {
	if !exists(m.dir) {
		return nil, fmt.Errorf("cgroup %s stats: %w", m.dir, ErrNotExist)
	}
	mt, err := m.mgr.Stat()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s stats: %w", m.dir, err)
	}
	return mt, nil
}

func (m *v2) OOM(ctx context.Context) (<-chan struct{}, error) {
	if err := m.ensure(); err != nil {
		return nil, err
	}
	if !exists(filepath.Join(m.dir, "memory.events")) {
		return nil, fmt.Errorf("oom events: the memory controller is not enabled in %s", m.dir)
	}
	return watchMemoryEvents(ctx, m.dir)
}

func (m *v2) Destroy() error {
	err := removeCgroups(m.dir)
	m.mu.Lock()
	m.created = false
	m.mayCreate = false
	m.mu.Unlock()
	return err
}
