package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Control files are written here rather than through cgroup2.ToResources
// and Manager.Update, which write -1 literally where the kernel wants
// "max", turn swap=-1 into a negative memory.swap.max, drop rdma devices
// that give only one of the two limits, and know no burst, idle, device
// weights or unified keys. Devices go through cgroup2 (its eBPF program
// compiler); the previous programs are detached afterwards.

// check refuses resources that cgroup v2 cannot express or that need a
// controller this cgroup does not have.
func (m *v2) check(r *specs.LinuxResources) error {
	avail, _ := readFile(m.dir, "cgroup.controllers")
	have := strings.Fields(avail)
	var errs []error
	need := func(ctrl, what string) {
		if !slices.Contains(have, ctrl) {
			errs = append(errs, fmt.Errorf("linux.resources.%s needs the %s controller, which is not available in %s", what, ctrl, m.dir))
		}
	}
	unsupported := func(what string) {
		errs = append(errs, fmt.Errorf("linux.resources.%s is not supported on cgroup v2", what))
	}
	if mem := r.Memory; mem != nil {
		if mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil {
			need("memory", "memory")
		}
		if mem.Swappiness != nil {
			unsupported("memory.swappiness")
		}
		if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
			unsupported("memory.disableOOMKiller")
		}
		// kernel and kernelTCP have no v2 knob: kernel memory is always
		// accounted in memory.max there. They are ignored, as runc does.
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil {
			need("cpu", "cpu")
		}
		if c.Cpus != "" || c.Mems != "" {
			need("cpuset", "cpu.cpus/mems")
		}
		if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
			unsupported("cpu.realtimeRuntime/realtimePeriod")
		}
	}
	if r.Pids != nil {
		need("pids", "pids")
	}
	if b := r.BlockIO; b != nil {
		need("io", "blockIO")
		if b.LeafWeight != nil {
			unsupported("blockIO.leafWeight")
		}
		for _, wd := range b.WeightDevice {
			if wd.LeafWeight != nil {
				unsupported("blockIO.weightDevice leafWeight")
				break
			}
		}
	}
	if len(r.HugepageLimits) > 0 {
		need("hugetlb", "hugepageLimits")
	}
	if len(r.Rdma) > 0 {
		need("rdma", "rdma")
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		unsupported("network (net_cls/net_prio exist only on v1)")
	}
	for k := range r.Unified {
		if k == "" || strings.Contains(k, "/") || k == "." || k == ".." {
			errs = append(errs, fmt.Errorf("linux.resources.unified: invalid key %q", k))
		}
	}
	return errors.Join(errs...)
}

func (m *v2) set(r *specs.LinuxResources) error {
	w := func(file, value string) error {
		if err := writeFile(m.dir, file, value); err != nil {
			return fmt.Errorf("set %s: %w", file, err)
		}
		return nil
	}
	if mem := r.Memory; mem != nil {
		if err := m.setMemory(mem); err != nil {
			return err
		}
	}
	if c := r.CPU; c != nil {
		if err := m.setCPU(c); err != nil {
			return err
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		if err := w("pids.max", maxOr(*p.Limit)); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		if err := m.setIO(b); err != nil {
			return err
		}
	}
	for _, h := range r.HugepageLimits {
		if err := setHugetlb(m.dir, h.Pagesize, "max", h.Limit); err != nil {
			return err
		}
	}
	for dev, l := range r.Rdma {
		if err := w("rdma.max", rdmaLine(dev, l)); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		if err := m.setDevices(r.Devices); err != nil {
			return err
		}
	}
	// unified last: its raw key/values override the typed fields.
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := w(k, r.Unified[k]); err != nil {
			return fmt.Errorf("linux.resources.unified: %w", err)
		}
	}
	return nil
}

// maxOr formats a limit where any negative value means unlimited.
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func (m *v2) setMemory(mem *specs.LinuxMemory) error {
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		cur, err := readUint(m.dir, "memory.current")
		if err != nil {
			return fmt.Errorf("check memory usage: %w", err)
		}
		if uint64(limit) < cur {
			return fmt.Errorf("memory limit %d is below the current usage %d (checkBeforeUpdate)", limit, cur)
		}
	}
	// The spec's swap is memory+swap (v1 semantics); memory.swap.max is
	// swap alone. Same conversion as runc.
	var swapV2 string
	switch {
	case limit == -1 && swap == 0:
		swapV2 = "max"
	case swap == -1:
		swapV2 = "max"
	case swap == 0:
	case limit <= 0:
		return errors.New("linux.resources.memory.swap needs a memory limit on cgroup v2")
	case swap < limit:
		return fmt.Errorf("linux.resources.memory.swap %d is below the memory limit %d (it is memory+swap)", swap, limit)
	default:
		swapV2 = strconv.FormatInt(swap-limit, 10)
	}
	if swapV2 != "" && exists(filepath.Join(m.dir, "memory.swap.max")) {
		if err := writeFile(m.dir, "memory.swap.max", swapV2); err != nil {
			return fmt.Errorf("set swap limit: %w", err)
		}
	} else if swapV2 != "" && swapV2 != "max" {
		return errors.New("linux.resources.memory.swap: this kernel has no swap accounting (no memory.swap.max)")
	}
	if limit != 0 {
		if err := writeFile(m.dir, "memory.max", maxOr(limit)); err != nil {
			cur, _ := readUint(m.dir, "memory.current")
			return fmt.Errorf("set memory limit %d (usage %d): %w", limit, cur, err)
		}
	}
	if mem.Reservation != nil {
		if err := writeFile(m.dir, "memory.low", maxOr(*mem.Reservation)); err != nil {
			return fmt.Errorf("set memory reservation: %w", err)
		}
	}
	return nil
}

func (m *v2) setCPU(c *specs.LinuxCPU) error {
	w := func(file, value string) error {
		if err := writeFile(m.dir, file, value); err != nil {
			return fmt.Errorf("set %s: %w", file, err)
		}
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := w("cpu.weight", strconv.FormatUint(cgroup2.ConvertCPUSharesToCgroupV2Value(*c.Shares), 10)); err != nil {
			return err
		}
	}
	// Zero means unset for quota and period.
	hasQuota, hasPeriod := c.Quota != nil && *c.Quota != 0, c.Period != nil && *c.Period != 0
	if hasQuota || hasPeriod {
		// cpu.max is "quota period"; keep the current half that is not given.
		cur, err := readFile(m.dir, "cpu.max")
		if err != nil {
			return fmt.Errorf("read cpu.max: %w", err)
		}
		quota, period, _ := strings.Cut(cur, " ")
		if hasQuota {
			quota = maxOr(*c.Quota)
		}
		if hasPeriod {
			period = strconv.FormatUint(*c.Period, 10)
		}
		if err := w("cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := w("cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := w("cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if c.Cpus != "" {
		if err := w("cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := w("cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// setIO writes weights to io.bfq.weight when the BFQ scheduler offers it
// (same 10-1000 range as blkio) and to io.weight otherwise (1-10000,
// converted as runc and crun do).
func (m *v2) setIO(b *specs.LinuxBlockIO) error {
	bfq := exists(filepath.Join(m.dir, "io.bfq.weight"))
	weightFile, conv := "io.weight", func(w uint16) uint64 { return 1 + (uint64(w)-10)*9999/990 }
	if bfq {
		weightFile, conv = "io.bfq.weight", func(w uint16) uint64 { return uint64(w) }
	}
	if b.Weight != nil && *b.Weight == 0 {
		b = copyBlkio(b) // 0 is "not set", as runc reads it
		b.Weight = nil
	}
	if b.Weight != nil || len(b.WeightDevice) > 0 {
		if !exists(filepath.Join(m.dir, weightFile)) {
			return errors.New("linux.resources.blockIO weights are not supported by this kernel (no io.weight or io.bfq.weight)")
		}
	}
	if b.Weight != nil {
		if *b.Weight < 10 {
			return fmt.Errorf("linux.resources.blockIO.weight %d is below 10", *b.Weight)
		}
		if err := writeFile(m.dir, weightFile, strconv.FormatUint(conv(*b.Weight), 10)); err != nil {
			return fmt.Errorf("set io weight: %w", err)
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight == nil {
			continue
		}
		v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, conv(*wd.Weight))
		if err := writeFile(m.dir, weightFile, v); err != nil {
			return fmt.Errorf("set io device weight: %w", err)
		}
	}
	for _, t := range []struct {
		key  string
		list []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.list {
			rate := strconv.FormatUint(d.Rate, 10)
			if d.Rate == 0 {
				rate = "max"
			}
			v := fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)
			if err := writeFile(m.dir, "io.max", v); err != nil {
				return fmt.Errorf("set io throttle: %w", err)
			}
		}
	}
	return nil
}

// setDevices attaches the eBPF device program cgroup2 compiles from the
// rules and then detaches the programs attached before it: programs
// attached with BPF_F_ALLOW_MULTI all have to allow an access, so an
// update that widens the rules would otherwise have no effect.
func (m *v2) setDevices(rules []specs.LinuxDeviceCgroup) error {
	dirFD, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	defer unix.Close(dirFD)
	old, err := link.QueryPrograms(link.QueryOptions{Target: dirFD, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	// cgroup2's compiler wants the spec's defaults spelled out.
	norm := make([]specs.LinuxDeviceCgroup, len(rules))
	for i, d := range rules {
		if d.Type == "" {
			d.Type = "a"
		}
		if d.Access == "" {
			d.Access = "rwm"
		}
		if d.Major == nil {
			d.Major = ptrTo(int64(-1))
		}
		if d.Minor == nil {
			d.Minor = ptrTo(int64(-1))
		}
		norm[i] = d
	}
	if err := m.mgr.Update(&cgroup2.Resources{Devices: norm}); err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	for _, p := range old.Programs {
		prog, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			return fmt.Errorf("set devices: old program %d: %w", p.ID, err)
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: dirFD, Program: prog, Attach: ebpf.AttachCGroupDevice})
		prog.Close()
		if err != nil {
			return fmt.Errorf("set devices: detach old program %d: %w", p.ID, err)
		}
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// copyBlkio returns a shallow copy, so a caller's spec is left as it was.
func copyBlkio(b *specs.LinuxBlockIO) *specs.LinuxBlockIO {
	c := *b
	return &c
}
