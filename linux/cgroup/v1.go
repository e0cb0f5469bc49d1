package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1 manages a cgroup in the v1 hierarchies through containerd's cgroup1
// package. It is also used on hybrid hosts: controllers live on v1 there.
type v1 struct {
	path string
	// subsystems are the hierarchies mounted on this host; controllers the
	// kernel has but that are not mounted (hugetlb, net_cls, ... on a fresh
	// machine) are absent, and Set refuses resources that need them.
	subsystems []cgroup1.Subsystem
	// unified is the cgroup's directory in a hybrid host's cgroup2 tree
	// (no controllers there). Processes join it too, as runc does, so
	// that the container's 0:: line is its own cgroup, which a cgroup
	// namespace then shows as "/", and tools that track processes by their
	// v2 cgroup (systemd) see the container as one group. "" on pure v1.
	unified string

	mu sync.Mutex
	// mayCreate is true for a manager from New until Destroy: only such a
	// manager creates the cgroup; a loaded one never brings a removed
	// cgroup back (its methods fail with ErrNotExist instead).
	mayCreate bool
	// inUnified: the unified directory exists and processes join it.
	inUnified bool
	cg        cgroup1.Cgroup // nil until created or loaded
}

var _ Manager = (*v1)(nil)

type pather interface {
	Path(string) string
}

func openV1(path string, load bool) (*v1, error) {
	subs, err := cgroup1.Default()
	if err != nil {
		return nil, fmt.Errorf("cgroup v1 hierarchies: %w", err)
	}
	m := &v1{path: path, subsystems: subs}
	if Mode() == ModeHybrid {
		m.unified = filepath.Join(unifiedMountpoint, "unified", path)
	}
	m.mayCreate = !load
	return m, nil
}

func (m *v1) hierarchy() ([]cgroup1.Subsystem, error) { return m.subsystems, nil }

func (m *v1) Path() string { return m.path }

// dir is the cgroup's directory in the hierarchy of controller name, or ""
// when that hierarchy is not mounted.
func (m *v1) dir(name cgroup1.Name) string {
	for _, s := range m.subsystems {
		if s.Name() == name {
			if p, ok := s.(pather); ok {
				return p.Path(m.path)
			}
		}
	}
	return ""
}

func (m *v1) Paths() map[string]string {
	out := make(map[string]string)
	for _, s := range m.subsystems {
		if p, ok := s.(pather); ok {
			out[string(s.Name())] = p.Path(m.path)
		}
	}
	if m.unified != "" {
		out[""] = m.unified
	}
	return out
}

// ensure creates the cgroup in every mounted hierarchy (parents included,
// an existing cgroup is joined as it is) unless that is done already, or,
// for a loaded manager, loads it.
func (m *v1) ensure() (cgroup1.Cgroup, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cg != nil {
		return m.cg, nil
	}
	if !m.mayCreate {
		cg, err := cgroup1.Load(cgroup1.StaticPath(m.path), cgroup1.WithHierarchy(m.hierarchy))
		if err != nil {
			if errors.Is(err, cgroup1.ErrCgroupDeleted) {
				return nil, fmt.Errorf("cgroup %s: %w", m.path, ErrNotExist)
			}
			return nil, fmt.Errorf("load cgroup %s: %w", m.path, err)
		}
		// The unified directory of a container created elsewhere may
		// be missing; exec'd processes join it all the same.
		if err := m.ensureUnified(); err != nil {
			return nil, err
		}
		m.cg = cg
		return cg, nil
	}
	// No resources here: cgroup1's create path skips several of them
	// (see set_v1.go); Set writes them all.
	cg, err := cgroup1.New(cgroup1.StaticPath(m.path), &specs.LinuxResources{}, cgroup1.WithHierarchy(m.hierarchy))
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", m.path, err)
	}
	if err := m.ensureUnified(); err != nil {
		return nil, err
	}
	m.cg = cg
	return cg, nil
}

// ensureUnified creates the hybrid cgroup2 directory. A read-only or
// forbidden cgroup2 tree (a runtime inside a container) is tolerated: no
// controller lives there. Called with m.mu held.
func (m *v1) ensureUnified() error {
	if m.unified == "" {
		return nil
	}
	if err := os.MkdirAll(m.unified, 0o755); err != nil {
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil
		}
		return fmt.Errorf("create cgroup %s: %w", m.unified, err)
	}
	m.inUnified = true
	return nil
}

func (m *v1) Create() error {
	_, err := m.ensure()
	return err
}

func (m *v1) Apply(pid int) error {
	cg, err := m.ensure()
	if err != nil {
		return err
	}
	if err := cg.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("move pid %d to cgroup %s: %w", pid, m.path, err)
	}
	m.mu.Lock()
	join := m.inUnified
	m.mu.Unlock()
	if join {
		if err := writeFile(m.unified, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("move pid %d to cgroup: %w", pid, err)
		}
	}
	return nil
}

func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := m.check(r); err != nil {
		return err
	}
	cg, err := m.ensure()
	if err != nil {
		return err
	}
	return m.set(cg, r)
}

// Freeze writes FROZEN and waits until the kernel reports it. A task stuck
// in an uninterruptible sleep can keep the cgroup FREEZING forever; as runc
// does, the freeze is briefly undone now and then to let such tasks make
// progress, and given up (thawed) after two seconds.
func (m *v1) Freeze() error {
	dir := m.dir(cgroup1.Freezer)
	if dir == "" {
		return errors.New("freeze: the freezer cgroup controller is not mounted")
	}
	if _, err := m.ensure(); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; ; i++ {
		if i%50 == 49 {
			if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
				return fmt.Errorf("freeze: %w", err)
			}
			time.Sleep(time.Millisecond)
		}
		if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		state, err := readFile(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if state == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = writeFile(dir, "freezer.state", "THAWED")
			return fmt.Errorf("freeze %s: still %s after 2s (a task in uninterruptible sleep?)", dir, state)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *v1) Thaw() error {
	dir := m.dir(cgroup1.Freezer)
	if dir == "" {
		return errors.New("thaw: the freezer cgroup controller is not mounted")
	}
	if _, err := m.ensure(); err != nil {
		return err
	}
	for range 1000 {
		if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		state, err := readFile(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		if state == "THAWED" {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("thaw %s: not THAWED after 1000 attempts", dir)
}

func (m *v1) Frozen() (bool, error) {
	dir := m.dir(cgroup1.Freezer)
	if dir == "" {
		return false, nil
	}
	state, err := readFile(dir, "freezer.state")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read freezer state: %w", err)
	}
	return state == "FROZEN", nil
}

func (m *v1) Pids() ([]int, error) {
	cg, err := m.ensure()
	if errors.Is(err, ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Every process is in every hierarchy; any mounted one will do.
	active := make(map[cgroup1.Name]bool)
	for _, s := range cg.Subsystems() {
		active[s.Name()] = true
	}
	for _, name := range []cgroup1.Name{cgroup1.Pids, cgroup1.Freezer, cgroup1.Memory, cgroup1.Cpu, cgroup1.Devices, "systemd"} {
		if !active[name] {
			continue
		}
		procs, err := cg.Processes(name, true)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed from this hierarchy: try the next
		}
		if err != nil {
			return nil, fmt.Errorf("list processes of cgroup %s: %w", m.path, err)
		}
		pids := make([]int, 0, len(procs))
		for _, p := range procs {
			pids = append(pids, p.Pid)
		}
		slices.Sort(pids)
		return slices.Compact(pids), nil
	}
	return nil, nil
}

func (m *v1) Metrics() (any, error) {
	return m.metrics()
}

func (m *v1) Stats() (*Stats, error) {
	mt, err := m.metrics()
	if err != nil {
		return nil, err
	}
	return statsFromV1(mt, m.Paths()), nil
}

func (m *v1) metrics() (*v1Metrics, error) {
	cg, err := m.ensure()
	if err != nil {
		return nil, err
	}
	mt, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s stats: %w", m.path, err)
	}
	return mt, nil
}

func (m *v1) OOM(ctx context.Context) (<-chan struct{}, error) {
	dir := m.dir(cgroup1.Memory)
	if dir == "" {
		return nil, errors.New("oom events: the memory cgroup controller is not mounted")
	}
	cg, err := m.ensure()
	if err != nil {
		return nil, err
	}
	efd, err := cg.OOMEventFD()
	if err != nil {
		return nil, fmt.Errorf("oom events of %s: %w", dir, err)
	}
	return watchEventfd(ctx, int(efd), dir)
}

func (m *v1) Destroy() error {
	var dirs []string
	for _, s := range m.subsystems {
		if p, ok := s.(pather); ok {
			dirs = append(dirs, p.Path(m.path))
		}
	}
	if m.unified != "" {
		dirs = append(dirs, m.unified)
	}
	err := removeCgroups(dirs...)
	m.mu.Lock()
	m.cg = nil
	m.inUnified = false
	m.mayCreate = false
	m.mu.Unlock()
	return err
}
