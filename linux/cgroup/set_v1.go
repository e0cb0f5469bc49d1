package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Where cgroup1 is used as is and where not: its Update writes cpu
// (shares, CFS), cpuset (copying cpus/mems into new parents),
// the simple memory knobs and blkio throttles. The rest is
// written here because cgroup1 gets it wrong for a runtime: memory limit
// and swap are ordered against the current values (runc's rule) and
// checkBeforeUpdate is honoured; realtime runtime makes room in the
// parents; pids -1 means "max"; blkio weights go to
// whichever weight file the kernel has (and fail clearly when it has
// none: kernel 6.x without CFQ has no blkio.weight); hugetlb and net_prio
// are written on update too (cgroup1 writes them only at creation); every rdma device is written, not only the first; devices
// start from deny-all; cpu burst and idle are supported.

// rootDir is the hierarchy root of controller name, or "" when unmounted.
func (m *v1) rootDir(name cgroup1.Name) string {
	for _, s := range m.subsystems {
		if s.Name() == name {
			if p, ok := s.(pather); ok {
				return p.Path("/")
			}
		}
	}
	return ""
}

// check refuses, before anything is written, resources this host cannot
// apply: a controller that is not mounted or a control file the kernel
// does not have.
func (m *v1) check(r *specs.LinuxResources) error {
	need := func(name cgroup1.Name, what string) error {
		if m.rootDir(name) == "" {
			return fmt.Errorf("linux.resources.%s needs the %s cgroup controller, which is not mounted on this host", what, name)
		}
		return nil
	}
	needFile := func(name cgroup1.Name, file, what string) error {
		if err := need(name, what); err != nil {
			return err
		}
		if !exists(filepath.Join(m.rootDir(name), file)) {
			return fmt.Errorf("linux.resources.%s is not supported by this kernel (no %s)", what, file)
		}
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(r.Unified) > 0 {
		add(errors.New("linux.resources.unified needs cgroup v2, but this host manages cgroups on v1"))
	}
	if mem := r.Memory; mem != nil {
		add(need(cgroup1.Memory, "memory"))
		// -1 (unlimited) is what no swap accounting amounts to anyway.
		if mem.Swap != nil && *mem.Swap > 0 {
			add(needFile(cgroup1.Memory, "memory.memsw.limit_in_bytes", "memory.swap (swap accounting is off)"))
		}
		if mem.Kernel != nil { //nolint:staticcheck // deprecated in the spec, still honoured on v1
			add(needFile(cgroup1.Memory, "memory.kmem.limit_in_bytes", "memory.kernel"))
		}
		if mem.KernelTCP != nil {
			add(needFile(cgroup1.Memory, "memory.kmem.tcp.limit_in_bytes", "memory.kernelTCP"))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil {
			add(need(cgroup1.Cpu, "cpu"))
		}
		if c.Burst != nil {
			add(needFile(cgroup1.Cpu, "cpu.cfs_burst_us", "cpu.burst"))
		}
		if c.Idle != nil {
			add(needFile(cgroup1.Cpu, "cpu.idle", "cpu.idle"))
		}
		if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
			add(needFile(cgroup1.Cpu, "cpu.rt_runtime_us", "cpu.realtimeRuntime/realtimePeriod"))
		}
		if c.Cpus != "" || c.Mems != "" {
			add(need(cgroup1.Cpuset, "cpu.cpus/mems"))
		}
	}
	if r.Pids != nil {
		add(need(cgroup1.Pids, "pids"))
	}
	if b := r.BlockIO; b != nil {
		add(need(cgroup1.Blkio, "blockIO"))
		if b.Weight != nil && *b.Weight != 0 && m.blkioFile("weight") == "" {
			add(errors.New("linux.resources.blockIO.weight is not supported by this kernel (no blkio.weight or blkio.bfq.weight: no CFQ/BFQ weights on cgroup v1)"))
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 && m.blkioFile("leaf_weight") == "" {
			add(errors.New("linux.resources.blockIO.leafWeight is not supported by this kernel (no blkio.leaf_weight)"))
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil && m.blkioFile("weight_device") == "" {
				add(errors.New("linux.resources.blockIO.weightDevice is not supported by this kernel (no blkio.weight_device or blkio.bfq.weight_device)"))
				break
			}
			if wd.LeafWeight != nil && m.blkioFile("leaf_weight_device") == "" {
				add(errors.New("linux.resources.blockIO.weightDevice leafWeight is not supported by this kernel (no blkio.leaf_weight_device)"))
				break
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add(needFile(cgroup1.Hugetlb, "hugetlb."+h.Pagesize+".limit_in_bytes", "hugepageLimits pagesize "+strconv.Quote(h.Pagesize)))
	}
	if len(r.Rdma) > 0 {
		add(need(cgroup1.Rdma, "rdma"))
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			add(need(cgroup1.NetCLS, "network.classID"))
		}
		if len(n.Priorities) > 0 {
			add(need(cgroup1.NetPrio, "network.priorities"))
		}
	}
	if len(r.Devices) > 0 && !skipDevices(m) {
		add(need(cgroup1.Devices, "devices"))
	}
	return errors.Join(errs...)
}

// skipDevices: in a user namespace the kernel refuses every write to the
// devices controller (cgroup1 does not even list it there), and the
// namespace's own device restrictions apply; runc skips it the same way.
func skipDevices(m *v1) bool {
	return m.rootDir(cgroup1.Devices) == "" && userns.RunningInUserNS()
}

// blkioFile returns the blkio control file this kernel has for a weight
// knob: the CFQ name, or BFQ's, or "" for none.
func (m *v1) blkioFile(knob string) string {
	root := m.rootDir(cgroup1.Blkio)
	if root == "" {
		return ""
	}
	for _, f := range []string{"blkio." + knob, "blkio.bfq." + knob} {
		if exists(filepath.Join(root, f)) {
			return f
		}
	}
	return ""
}

func (m *v1) set(cg cgroup1.Cgroup, r *specs.LinuxResources) error {
	if len(r.Devices) > 0 && !skipDevices(m) {
		if err := setDevicesV1(m.dir(cgroup1.Devices), r.Devices); err != nil {
			return err
		}
	}
	if r.Memory != nil {
		if err := setMemoryV1(m.dir(cgroup1.Memory), r.Memory); err != nil {
			return err
		}
	}
	if err := cg.Update(libResourcesV1(r)); err != nil {
		return fmt.Errorf("set cgroup %s resources: %w", m.path, err)
	}
	if c := r.CPU; c != nil {
		if err := setRealtimeV1(m.rootDir(cgroup1.Cpu), m.dir(cgroup1.Cpu), c); err != nil {
			return err
		}
		if err := setCPUV1(m.dir(cgroup1.Cpu), c); err != nil {
			return err
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		// 0 is a real limit (no new tasks); only -1 means none.
		v := "max"
		if *p.Limit >= 0 {
			v = strconv.FormatInt(*p.Limit, 10)
		}
		if err := writeFile(m.dir(cgroup1.Pids), "pids.max", v); err != nil {
			return fmt.Errorf("set pids limit: %w", err)
		}
	}
	if b := r.BlockIO; b != nil {
		if err := m.setBlkioWeights(b); err != nil {
			return err
		}
	}
	for _, h := range r.HugepageLimits {
		if err := setHugetlb(m.dir(cgroup1.Hugetlb), h.Pagesize, "limit_in_bytes", h.Limit); err != nil {
			return err
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			if err := writeFile(m.dir(cgroup1.NetCLS), "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
				return fmt.Errorf("set network classID: %w", err)
			}
		}
		for _, p := range n.Priorities {
			if err := writeFile(m.dir(cgroup1.NetPrio), "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return fmt.Errorf("set network priority: %w", err)
			}
		}
	}
	for dev, l := range r.Rdma {
		if err := writeFile(m.dir(cgroup1.Rdma), "rdma.max", rdmaLine(dev, l)); err != nil {
			return fmt.Errorf("set rdma limit: %w", err)
		}
	}
	return nil
}

// libResourcesV1 is the part of r that cgroup1's Update writes correctly.
func libResourcesV1(r *specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if mem := r.Memory; mem != nil {
		out.Memory = &specs.LinuxMemory{
			Reservation:      mem.Reservation,
			Kernel:           mem.Kernel, //nolint:staticcheck // deprecated in the spec, still honoured on v1
			KernelTCP:        mem.KernelTCP,
			Swappiness:       mem.Swappiness,
			DisableOOMKiller: mem.DisableOOMKiller,
		}
	}
	if c := r.CPU; c != nil {
		// 0 means unset for these; cgroup1 would write it (and the
		// kernel would clamp shares to 2 or refuse a zero period).
		nz := func(p *uint64) *uint64 {
			if p == nil || *p == 0 {
				return nil
			}
			return p
		}
		out.CPU = &specs.LinuxCPU{
			Shares: nz(c.Shares),
			Quota:  c.Quota,
			Period: nz(c.Period),
			Cpus:   c.Cpus,
			Mems:   c.Mems,
		}
		if c.Quota != nil && *c.Quota == 0 {
			out.CPU.Quota = nil
		}
	}
	if b := r.BlockIO; b != nil {
		out.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   b.ThrottleReadBpsDevice,
			ThrottleWriteBpsDevice:  b.ThrottleWriteBpsDevice,
			ThrottleReadIOPSDevice:  b.ThrottleReadIOPSDevice,
			ThrottleWriteIOPSDevice: b.ThrottleWriteIOPSDevice,
		}
	}
	return out
}

// setMemoryV1 writes the memory limit and the memory+swap limit. The kernel
// insists that memsw >= limit at every moment, so the order depends on the
// current limit (runc's rule); a limit of -1 with no swap given makes swap
// unlimited too.
func setMemoryV1(dir string, mem *specs.LinuxMemory) error {
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		usage, err := readUint(dir, "memory.usage_in_bytes")
		if err != nil {
			return fmt.Errorf("check memory usage: %w", err)
		}
		if uint64(limit) < usage {
			return fmt.Errorf("memory limit %d is below the current usage %d (checkBeforeUpdate)", limit, usage)
		}
	}
	hasSwap := exists(filepath.Join(dir, "memory.memsw.limit_in_bytes"))
	if limit == -1 && swap == 0 && hasSwap {
		swap = -1
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		if err := writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10)); err != nil {
			usage, _ := readUint(dir, "memory.usage_in_bytes")
			return fmt.Errorf("set memory limit %d (usage %d): %w", limit, usage, err)
		}
		return nil
	}
	setSwap := func() error {
		if swap == 0 || !hasSwap {
			return nil
		}
		if err := writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10)); err != nil {
			return fmt.Errorf("set memory+swap limit %d: %w", swap, err)
		}
		return nil
	}
	first, second := setLimit, setSwap
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return fmt.Errorf("read memory limit: %w", err)
		}
		if swap == -1 || cur < uint64(swap) {
			first, second = setSwap, setLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	return second()
}

// setRealtimeV1 writes the realtime period and runtime. A cgroup's runtime
// must fit in its parent's, and new cgroups get none, so a runtime the
// kernel refuses (EINVAL) is made room for by raising the ancestors that
// have less (scaled to their periods; what siblings already hold still
// counts) and tried again, as crun does. The ancestors keep that budget.
// The period goes first unless the current runtime does not fit in it.
func setRealtimeV1(root, dir string, c *specs.LinuxCPU) error {
	period := ""
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		period = strconv.FormatUint(*c.RealtimePeriod, 10)
	}
	periodFirst := period != "" && writeFile(dir, "cpu.rt_period_us", period) == nil
	if c.RealtimeRuntime != nil {
		rt := *c.RealtimeRuntime
		err := writeFile(dir, "cpu.rt_runtime_us", strconv.FormatInt(rt, 10))
		if err != nil && errors.Is(err, unix.EINVAL) && rt > 0 {
			if rerr := raiseRealtimeParents(root, dir, rt); rerr != nil {
				return fmt.Errorf("set cpu realtime runtime %d: %w", rt, rerr)
			}
			err = writeFile(dir, "cpu.rt_runtime_us", strconv.FormatInt(rt, 10))
		}
		if err != nil {
			return fmt.Errorf("set cpu realtime runtime: %w", err)
		}
	}
	if period != "" && !periodFirst {
		if err := writeFile(dir, "cpu.rt_period_us", period); err != nil {
			return fmt.Errorf("set cpu realtime period: %w", err)
		}
	}
	return nil
}

// raiseRealtimeParents gives every ancestor of dir below root at least the
// share of CPU time that runtime per dir's period is, top down.
func raiseRealtimeParents(root, dir string, runtime int64) error {
	period, err := readUint(dir, "cpu.rt_period_us")
	if err != nil || period == 0 {
		return fmt.Errorf("read realtime period of %s: %w", dir, err)
	}
	rel, err := filepath.Rel(root, filepath.Dir(dir))
	if err != nil || rel == "." {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		p, err := readUint(cur, "cpu.rt_period_us")
		if err != nil {
			return err
		}
		want := (uint64(runtime)*p + period - 1) / period
		have, err := readUint(cur, "cpu.rt_runtime_us")
		if err != nil {
			return err
		}
		if have >= want {
			continue
		}
		if err := writeFile(cur, "cpu.rt_runtime_us", strconv.FormatUint(want, 10)); err != nil {
			return fmt.Errorf("give parent cgroup %s the realtime budget: %w", cur, err)
		}
	}
	return nil
}

// setCPUV1 writes what cgroup1 does not (burst, idle) and verifies shares:
// the kernel clamps them silently to [2, 262144].
func setCPUV1(dir string, c *specs.LinuxCPU) error {
	if c.Shares != nil && *c.Shares != 0 {
		got, err := readUint(dir, "cpu.shares")
		if err != nil {
			return fmt.Errorf("read cpu shares: %w", err)
		}
		if got != *c.Shares {
			return fmt.Errorf("cpu shares %d out of range: the kernel set %d", *c.Shares, got)
		}
	}
	if c.Burst != nil {
		if err := writeFile(dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return fmt.Errorf("set cpu burst: %w", err)
		}
	}
	if c.Idle != nil {
		if err := writeFile(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return fmt.Errorf("set cpu idle: %w", err)
		}
	}
	return nil
}

func (m *v1) setBlkioWeights(b *specs.LinuxBlockIO) error {
	dir := m.dir(cgroup1.Blkio)
	// A weight of 0 means "not set" (docker sends it on every create and
	// update), as runc reads it.
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(dir, m.blkioFile("weight"), strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return fmt.Errorf("set blkio weight: %w", err)
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(dir, m.blkioFile("leaf_weight"), strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return fmt.Errorf("set blkio leaf weight: %w", err)
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)
			if err := writeFile(dir, m.blkioFile("weight_device"), v); err != nil {
				return fmt.Errorf("set blkio device weight: %w", err)
			}
		}
		if wd.LeafWeight != nil {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)
			if err := writeFile(dir, m.blkioFile("leaf_weight_device"), v); err != nil {
				return fmt.Errorf("set blkio device leaf weight: %w", err)
			}
		}
	}
	return nil
}

// setDevicesV1 starts from deny-all and then writes the rules in order, as
// the spec requires (a later rule overrides an earlier one). Updating a
// running container's rules this way denies everything for a moment.
func setDevicesV1(dir string, rules []specs.LinuxDeviceCgroup) error {
	if err := writeFile(dir, "devices.deny", "a"); err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	for _, d := range rules {
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		if err := writeFile(dir, file, deviceRule(d)); err != nil {
			return fmt.Errorf("set devices: %w", err)
		}
	}
	return nil
}

func deviceRule(d specs.LinuxDeviceCgroup) string {
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	num := func(n *int64) string {
		if n == nil || *n < 0 {
			return "*"
		}
		return strconv.FormatInt(*n, 10)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(d.Major), num(d.Minor), access)
}

// setHugetlb writes a hugepage limit and, where the kernel has it (5.7+),
// the same limit on reservations, as runc does: without it a reservation
// made by mmap can exceed the limit and fail only at fault time.
// The files are hugetlb.<pagesize>.<file> and hugetlb.<pagesize>.rsvd.<file>.
func setHugetlb(dir, pagesize, file string, limit uint64) error {
	v := strconv.FormatUint(limit, 10)
	if err := writeFile(dir, "hugetlb."+pagesize+"."+file, v); err != nil {
		return fmt.Errorf("set hugepage limit: %w", err)
	}
	if rsvd := "hugetlb." + pagesize + ".rsvd." + file; exists(filepath.Join(dir, rsvd)) {
		if err := writeFile(dir, rsvd, v); err != nil {
			return fmt.Errorf("set hugepage reservation limit: %w", err)
		}
	}
	return nil
}

// rdmaLine is one rdma.max line ("max" for a limit that is not given).
func rdmaLine(dev string, l specs.LinuxRdma) string {
	v := func(p *uint32) string {
		if p == nil {
			return "max"
		}
		return strconv.FormatUint(uint64(*p), 10)
	}
	return fmt.Sprintf("%s hca_handle=%s hca_object=%s", dev, v(l.HcaHandles), v(l.HcaObjects))
}
