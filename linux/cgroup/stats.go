package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/opencontainers/runc/types"
)

// Stats is the `events --stats` data, in runc's JSON shape.
type Stats = types.Stats

type (
	v1Metrics = v1stats.Metrics
	v2Metrics = v2stats.Metrics
)

// statsFromV1 converts containerd's v1 metrics to runc's shape, and adds
// what runc reports that containerd's metrics lack: memory.stat as
// Memory.Raw, per-CPU user/kernel time, the cpuset. dirs is Paths().
func statsFromV1(m *v1Metrics, dirs map[string]string) *Stats {
	s := &Stats{Hugetlb: make(map[string]types.Hugetlb)}
	if c := m.CPU; c != nil {
		if u := c.Usage; u != nil {
			s.CPU.Usage = types.CpuUsage{Total: u.Total, Percpu: u.PerCPU, Kernel: u.Kernel, User: u.User}
		}
		if t := c.Throttling; t != nil {
			s.CPU.Throttling = types.Throttling{Periods: t.Periods, ThrottledPeriods: t.ThrottledPeriods, ThrottledTime: t.ThrottledTime}
		}
	}
	if mem := m.Memory; mem != nil {
		s.Memory.Cache = mem.Cache
		s.Memory.Usage = memEntry(mem.Usage)
		s.Memory.Swap = memEntry(mem.Swap)
		s.Memory.Kernel = memEntry(mem.Kernel)
		s.Memory.KernelTCP = memEntry(mem.KernelTCP)
		if d := dirs["memory"]; d != "" {
			if raw, err := readKV(d, "memory.stat"); err == nil {
				s.Memory.Raw = raw
			}
		}
	}
	if p := m.Pids; p != nil {
		s.Pids = types.Pids{Current: p.Current, Limit: p.Limit}
	}
	if b := m.Blkio; b != nil {
		s.Blkio = types.Blkio{
			IoServiceBytesRecursive: blkioEntries(b.IoServiceBytesRecursive),
			IoServicedRecursive:     blkioEntries(b.IoServicedRecursive),
			IoQueuedRecursive:       blkioEntries(b.IoQueuedRecursive),
			IoServiceTimeRecursive:  blkioEntries(b.IoServiceTimeRecursive),
			IoWaitTimeRecursive:     blkioEntries(b.IoWaitTimeRecursive),
			IoMergedRecursive:       blkioEntries(b.IoMergedRecursive),
			IoTimeRecursive:         blkioEntries(b.IoTimeRecursive),
			SectorsRecursive:        blkioEntries(b.SectorsRecursive),
		}
	}
	for _, h := range m.Hugetlb {
		s.Hugetlb[h.Pagesize] = types.Hugetlb{Usage: h.Usage, Max: h.Max, Failcnt: h.Failcnt}
	}
	if d := dirs["cpuacct"]; d != "" {
		s.CPU.Usage.PercpuUser, s.CPU.Usage.PercpuKernel = percpuUsage(d)
	}
	if d := dirs["cpuset"]; d != "" {
		s.CPUSet = cpusetStats(d, "cpuset.cpus", "cpuset.mems")
	}
	return s
}

// percpuUsage reads cpuacct.usage_all ("cpu user system" lines, ns).
func percpuUsage(dir string) (user, kernel []uint64) {
	b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage_all"))
	if err != nil {
		return nil, nil
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		var cpu int
		var u, k uint64
		if n, _ := fmt.Sscanf(line, "%d %d %d", &cpu, &u, &k); n == 3 {
			user, kernel = append(user, u), append(kernel, k)
		}
	}
	return user, kernel
}

// cpusetStats reports the CPUs and memory nodes of a cpuset (and on v1
// its flags, as runc does).
func cpusetStats(dir, cpusFile, memsFile string) types.CPUSet {
	var c types.CPUSet
	if s, err := readFile(dir, cpusFile); err == nil {
		c.CPUs = parseSet(s)
	}
	if s, err := readFile(dir, memsFile); err == nil {
		c.Mems = parseSet(s)
	}
	for file, v := range map[string]*uint64{
		"cpuset.cpu_exclusive":      &c.CPUExclusive,
		"cpuset.mem_hardwall":       &c.MemHardwall,
		"cpuset.mem_exclusive":      &c.MemExclusive,
		"cpuset.memory_migrate":     &c.MemoryMigrate,
		"cpuset.memory_spread_page": &c.MemorySpreadPage,
		"cpuset.memory_spread_slab": &c.MemorySpreadSlab,
		"cpuset.memory_pressure":    &c.MemoryPressure,
		"cpuset.sched_load_balance": &c.SchedLoadBalance,
	} {
		if n, err := readUint(dir, file); err == nil {
			*v = n
		}
	}
	if s, err := readFile(dir, "cpuset.sched_relax_domain_level"); err == nil {
		c.SchedRelaxDomainLevel, _ = strconv.ParseInt(s, 10, 64)
	}
	return c
}

// parseSet expands a kernel list such as "0-3,8" into its members.
func parseSet(s string) []uint16 {
	var out []uint16
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				continue
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out
}

func memEntry(e *v1stats.MemoryEntry) types.MemoryEntry {
	if e == nil {
		return types.MemoryEntry{}
	}
	return types.MemoryEntry{Limit: e.Limit, Usage: e.Usage, Max: e.Max, Failcnt: e.Failcnt}
}

func blkioEntries(in []*v1stats.BlkIOEntry) []types.BlkioEntry {
	out := make([]types.BlkioEntry, 0, len(in))
	for _, e := range in {
		out = append(out, types.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

// statsFromV2 converts containerd's v2 metrics to runc's shape, the way
// runc's fs2 manager fills it (usec to nsec, io.stat as blkio entries).
func statsFromV2(m *v2Metrics, dir string) *Stats {
	s := &Stats{Hugetlb: make(map[string]types.Hugetlb)}
	if c := m.CPU; c != nil {
		s.CPU.Usage = types.CpuUsage{Total: c.UsageUsec * 1000, Kernel: c.SystemUsec * 1000, User: c.UserUsec * 1000}
		s.CPU.Throttling = types.Throttling{Periods: c.NrPeriods, ThrottledPeriods: c.NrThrottled, ThrottledTime: c.ThrottledUsec * 1000}
	}
	if mem := m.Memory; mem != nil {
		s.Memory.Cache = mem.File
		s.Memory.Usage = types.MemoryEntry{Usage: mem.Usage, Limit: mem.UsageLimit, Max: mem.MaxUsage}
		s.Memory.Swap = types.MemoryEntry{Usage: mem.SwapUsage, Limit: mem.SwapLimit, Max: mem.SwapMaxUsage}
		if raw, err := readKV(dir, "memory.stat"); err == nil {
			s.Memory.Raw = raw
		}
	}
	if e := m.MemoryEvents; e != nil {
		s.Memory.Usage.Failcnt = e.Max
	}
	if p := m.Pids; p != nil {
		s.Pids = types.Pids{Current: p.Current, Limit: p.Limit}
	}
	if io := m.Io; io != nil {
		for _, e := range io.Usage {
			s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive,
				types.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: "Read", Value: e.Rbytes},
				types.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: "Write", Value: e.Wbytes})
			s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive,
				types.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: "Read", Value: e.Rios},
				types.BlkioEntry{Major: e.Major, Minor: e.Minor, Op: "Write", Value: e.Wios})
		}
	}
	for _, h := range m.Hugetlb {
		s.Hugetlb[h.Pagesize] = types.Hugetlb{Usage: h.Current, Max: h.Max, Failcnt: h.Failcnt}
	}
	s.CPUSet = cpusetStats(dir, "cpuset.cpus.effective", "cpuset.mems.effective")
	return s
}
