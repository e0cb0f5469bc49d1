package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const mib = 1 << 20

// newV1 returns a v1 manager for a fresh test cgroup, destroyed at the end.
func newV1(t *testing.T) *v1 {
	t.Helper()
	needRoot(t)
	if m := Mode(); m != ModeV1 && m != ModeHybrid {
		t.Skipf("host cgroup mode is %s, not v1", m)
	}
	mgr, err := New("test", testPath(t), false)
	ok(t, err)
	m := mgr.(*v1)
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

func (m *v1) file(name cgroup1.Name, file string) string {
	return filepath.Join(m.dir(name), file)
}

func TestV1SetReadBack(t *testing.T) {
	m := newV1(t)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit:            ptrTo(int64(64 * mib)),
			Reservation:      ptrTo(int64(32 * mib)),
			Swap:             ptrTo(int64(128 * mib)),
			Kernel:           ptrTo(int64(16 * mib)), // accepted, a no-op since kernel 6.x
			KernelTCP:        ptrTo(int64(8 * mib)),
			Swappiness:       ptrTo(uint64(10)),
			DisableOOMKiller: ptrTo(true),
		},
		CPU: &specs.LinuxCPU{
			Shares:          ptrTo(uint64(512)),
			Quota:           ptrTo(int64(50000)),
			Period:          ptrTo(uint64(100000)),
			Burst:           ptrTo(uint64(10000)),
			RealtimePeriod:  ptrTo(uint64(500000)),
			RealtimeRuntime: ptrTo(int64(0)),
			Cpus:            "0",
			Mems:            "0",
		},
		Pids: &specs.LinuxPids{Limit: ptrTo(int64(100))},
		BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{throttle(1 * mib)},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{throttle(2 * mib)},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{throttle(300)},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{throttle(400)},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 * mib}},
		Network: &specs.LinuxNetwork{
			ClassID:    ptrTo(uint32(0x100001)),
			Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 5}},
		},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptrTo(int64(1)), Minor: ptrTo(int64(3)), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptrTo(int64(136)), Access: "rw"},
		},
	}
	ok(t, m.Set(r))

	for file, want := range map[string]string{
		"memory.limit_in_bytes":          "67108864",
		"memory.soft_limit_in_bytes":     "33554432",
		"memory.memsw.limit_in_bytes":    "134217728",
		"memory.kmem.tcp.limit_in_bytes": "8388608",
		"memory.swappiness":              "10",
	} {
		wantFile(t, m.file(cgroup1.Memory, file), want)
	}
	if s := readT(t, m.file(cgroup1.Memory, "memory.oom_control")); !strings.Contains(s, "oom_kill_disable 1") {
		t.Errorf("memory.oom_control = %q, want oom_kill_disable 1", s)
	}
	for file, want := range map[string]string{
		"cpu.shares":        "512",
		"cpu.cfs_quota_us":  "50000",
		"cpu.cfs_period_us": "100000",
		"cpu.cfs_burst_us":  "10000",
		"cpu.rt_period_us":  "500000",
		"cpu.rt_runtime_us": "0",
	} {
		wantFile(t, m.file(cgroup1.Cpu, file), want)
	}
	wantFile(t, m.file(cgroup1.Cpuset, "cpuset.cpus"), "0")
	wantFile(t, m.file(cgroup1.Cpuset, "cpuset.mems"), "0")
	wantFile(t, m.file(cgroup1.Pids, "pids.max"), "100")
	dev := blockDev(t)
	for file, want := range map[string]string{
		"blkio.throttle.read_bps_device":   dev + " 1048576",
		"blkio.throttle.write_bps_device":  dev + " 2097152",
		"blkio.throttle.read_iops_device":  dev + " 300",
		"blkio.throttle.write_iops_device": dev + " 400",
	} {
		wantFile(t, m.file(cgroup1.Blkio, file), want)
	}
	wantFile(t, m.file(cgroup1.Hugetlb, "hugetlb.2MB.limit_in_bytes"), "4194304")
	wantFile(t, m.file(cgroup1.Hugetlb, "hugetlb.2MB.rsvd.limit_in_bytes"), "4194304")
	wantFile(t, m.file(cgroup1.NetCLS, "net_cls.classid"), "1048577")
	if s := readT(t, m.file(cgroup1.NetPrio, "net_prio.ifpriomap")); !strings.Contains(s, "lo 5") {
		t.Errorf("net_prio.ifpriomap = %q, want a line lo 5", s)
	}
	wantFile(t, m.file(cgroup1.Devices, "devices.list"), "c 1:3 rwm\nc 136:* rw")

	// Update: limit and swap both above the current memsw limit only work
	// swap-first; pids -1 is unlimited; idle is its own knob.
	ok(t, m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptrTo(int64(256 * mib)), Swap: ptrTo(int64(512 * mib))},
		Pids:   &specs.LinuxPids{Limit: ptrTo(int64(-1))},
		CPU:    &specs.LinuxCPU{Idle: ptrTo(int64(1))},
	}))
	wantFile(t, m.file(cgroup1.Memory, "memory.limit_in_bytes"), "268435456")
	wantFile(t, m.file(cgroup1.Memory, "memory.memsw.limit_in_bytes"), "536870912")
	wantFile(t, m.file(cgroup1.Pids, "pids.max"), "max")
	ok(t, m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptrTo(int64(0))}}))
	wantFile(t, m.file(cgroup1.Pids, "pids.max"), "0")
	wantFile(t, m.file(cgroup1.Cpu, "cpu.idle"), "1")
	// Zero means unset: nothing changes.
	ok(t, m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptrTo(uint64(0)), Quota: ptrTo(int64(0)), Period: ptrTo(uint64(0))}}))
	wantFile(t, m.file(cgroup1.Cpu, "cpu.cfs_quota_us"), "50000")
	wantFile(t, m.file(cgroup1.Cpu, "cpu.cfs_period_us"), "100000")
	// And back down: limit first.
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(16 * mib)), Swap: ptrTo(int64(32 * mib))}}))
	wantFile(t, m.file(cgroup1.Memory, "memory.limit_in_bytes"), "16777216")
	wantFile(t, m.file(cgroup1.Memory, "memory.memsw.limit_in_bytes"), "33554432")
	// Unlimited memory without a swap value lifts swap too.
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(-1))}}))
	wantFile(t, m.file(cgroup1.Memory, "memory.limit_in_bytes"), "9223372036854771712")
	wantFile(t, m.file(cgroup1.Memory, "memory.memsw.limit_in_bytes"), "9223372036854771712")
}

func throttle(rate uint64) specs.LinuxThrottleDevice {
	d := specs.LinuxThrottleDevice{Rate: rate}
	d.Major, d.Minor = vdaMajor, vdaMinor
	return d
}

// The block device the throttle tests use; blockDev checks it exists.
const vdaMajor, vdaMinor = 254, 0

func blockDev(t *testing.T) string {
	t.Helper()
	s := readT(t, "/sys/block/vda/dev")
	if s != "254:0" {
		t.Fatalf("/sys/block/vda/dev = %q, the test expects 254:0", s)
	}
	return s
}

func TestV1SetRefusesWhatTheHostLacks(t *testing.T) {
	m := newV1(t)
	for _, tc := range []struct {
		name string
		r    specs.LinuxResources
		want string
	}{
		{"unified", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, "unified needs cgroup v2"},
		// Kernel 6.x has no blkio.weight on v1 (no CFQ).
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptrTo(uint16(500))}}, "blockIO.weight is not supported"},
		{"blkio leaf weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptrTo(uint16(500))}}, "blockIO.leafWeight is not supported"},
		{"rdma", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptrTo(uint32(3))}}}, "needs the rdma cgroup controller"},
		{"hugepage size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}, `pagesize "3MB" is not supported`},
		{"cpu shares clamped", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptrTo(uint64(1))}}, "cpu shares 1 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, m.Set(&tc.r), tc.want)
		})
	}
	if exists(m.file(cgroup1.Blkio, "blkio.weight")) {
		t.Fatal("this kernel has blkio.weight; the weight case above tested nothing")
	}

	// A controller that is not mounted is skipped when nothing asks for it
	// and named when something does.
	noHuge, err := openV1(testPath(t)+"-nohuge", false)
	ok(t, err)
	noHuge.subsystems = slices.DeleteFunc(noHuge.subsystems, func(s cgroup1.Subsystem) bool { return s.Name() == cgroup1.Hugetlb })
	defer func() { ok(t, noHuge.Destroy()) }()
	ok(t, noHuge.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptrTo(int64(10))}}))
	err = noHuge.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 * mib}}})
	wantErr(t, err, "needs the hugetlb cgroup controller, which is not mounted")
}

func TestV1Lifecycle(t *testing.T) {
	m := newV1(t)
	ok(t, m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptrTo(int64(50))}, Memory: &specs.LinuxMemory{Limit: ptrTo(int64(256 * mib))}}))
	// v1 does not move memory charges with a task: the child allocates
	// (16 MiB) once it is in the cgroup, so that memory stats have something.
	c := startChild(t, "hold")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	waitMemory(t, m.dir(cgroup1.Memory), "memory.usage_in_bytes", 16*mib)

	// The process is in the cgroup of every hierarchy.
	for name, dir := range m.Paths() {
		if procs := readT(t, filepath.Join(dir, "cgroup.procs")); procs != itoa(c.pid()) {
			t.Errorf("%s cgroup.procs = %q, want %d", name, procs, c.pid())
		}
	}
	pids, err := m.Pids()
	ok(t, err)
	if !slices.Equal(pids, []int{c.pid()}) {
		t.Errorf("Pids() = %v, want [%d]", pids, c.pid())
	}

	// Load from what a later command knows: id and cgroupsPath.
	loaded, err := Load("test", testPath(t), false)
	ok(t, err)
	ok(t, loaded.Freeze())
	frozen, err := m.Frozen()
	ok(t, err)
	wantFile(t, m.file(cgroup1.Freezer, "freezer.state"), "FROZEN")
	if !frozen {
		t.Error("Frozen() = false after Freeze")
	}
	ok(t, loaded.Thaw())
	wantFile(t, m.file(cgroup1.Freezer, "freezer.state"), "THAWED")
	if frozen, _ := m.Frozen(); frozen {
		t.Error("Frozen() = true after Thaw")
	}

	st, err := loaded.Stats()
	ok(t, err)
	// pids.current counts threads, and the Go child has several.
	if st.CPU.Usage.Total == 0 || st.Memory.Usage.Usage == 0 || st.Pids.Current < 1 || st.Pids.Limit != 50 {
		t.Errorf("Stats: cpu total %d, memory usage %d, pids %d/%d; want non-zero, non-zero, >=1/50",
			st.CPU.Usage.Total, st.Memory.Usage.Usage, st.Pids.Current, st.Pids.Limit)
	}
	if st.Memory.Usage.Limit != 256*mib || st.Memory.Raw["hierarchical_memory_limit"] != 256*mib {
		t.Errorf("Stats memory: limit %d, raw %v; want 256 MiB in both", st.Memory.Usage.Limit, st.Memory.Raw)
	}
	if len(st.CPU.Usage.PercpuUser) == 0 || len(st.CPU.Usage.PercpuUser) != len(st.CPU.Usage.Percpu) {
		t.Errorf("Stats per-CPU user times %v, want one per CPU of %v", st.CPU.Usage.PercpuUser, st.CPU.Usage.Percpu)
	}
	if want := parseSet(readT(t, "/sys/fs/cgroup/cpuset/cpuset.cpus")); !slices.Equal(st.CPUSet.CPUs, want) || len(want) == 0 {
		t.Errorf("Stats cpuset CPUs = %v, want %v", st.CPUSet.CPUs, want)
	}
	if _, ok := st.Hugetlb["2MB"]; !ok {
		t.Errorf("Stats hugetlb = %v, want a 2MB entry", st.Hugetlb)
	}
	mt, err := loaded.Metrics()
	ok(t, err)
	v1m, isV1 := mt.(*v1stats.Metrics)
	if !isV1 || v1m.CPU.Usage.Total == 0 || v1m.Memory.Usage.Usage == 0 || v1m.Pids.Current < 1 {
		t.Errorf("Metrics = %T %+v, want non-zero v1 metrics", mt, mt)
	}

	// Not empty: Destroy fails (after its retries) and says why.
	start := time.Now()
	wantErr(t, m.Destroy(), "busy")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Destroy of a busy cgroup took %v", d)
	}

	ok(t, c.cmd.Process.Kill())
	c.wait(t, 5*time.Second)
	ok(t, loaded.Destroy())
	for name, dir := range m.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s still there after Destroy (%v)", name, dir, err)
		}
	}
	ok(t, m.Destroy()) // gone already: no error

	// A container whose cgroup is gone can still be loaded, listed and
	// deleted; nothing brings the cgroup back.
	gone, err := Load("test", testPath(t), false)
	ok(t, err)
	if pids, err := gone.Pids(); err != nil || len(pids) != 0 {
		t.Errorf("Pids() of a removed cgroup = %v, %v; want none, no error", pids, err)
	}
	if _, err := gone.Stats(); !errors.Is(err, ErrNotExist) {
		t.Errorf("Stats() of a removed cgroup: %v, want ErrNotExist", err)
	}
	if err := gone.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptrTo(int64(5))}}); !errors.Is(err, ErrNotExist) {
		t.Errorf("Set() on a removed cgroup: %v, want ErrNotExist", err)
	}
	ok(t, gone.Destroy())
	for name, dir := range m.Paths() {
		if exists(dir) {
			t.Errorf("%s: %s came back", name, dir)
		}
	}
}

func TestV1RealtimeInNestedCgroup(t *testing.T) {
	m := newV1(t)
	if !exists(filepath.Join(m.rootDir(cgroup1.Cpu), "cpu.rt_runtime_us")) {
		t.Skip("kernel without CONFIG_RT_GROUP_SCHED")
	}
	// What runtime-tools' linux_cgroups_cpus asks: the whole default
	// budget, in a cgroup whose parent (/railcar-test) has none.
	ok(t, m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: ptrTo(uint64(1000000)), RealtimeRuntime: ptrTo(int64(950000))}}))
	wantFile(t, m.file(cgroup1.Cpu, "cpu.rt_period_us"), "1000000")
	wantFile(t, m.file(cgroup1.Cpu, "cpu.rt_runtime_us"), "950000")
	wantFile(t, filepath.Join(filepath.Dir(m.dir(cgroup1.Cpu)), "cpu.rt_runtime_us"), "950000")
	// A shorter period with a runtime that no longer fits the old one.
	ok(t, m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: ptrTo(uint64(100000)), RealtimeRuntime: ptrTo(int64(50000))}}))
	wantFile(t, m.file(cgroup1.Cpu, "cpu.rt_period_us"), "100000")
	wantFile(t, m.file(cgroup1.Cpu, "cpu.rt_runtime_us"), "50000")
	// More than the machine has fails and says where.
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: ptrTo(uint64(1000000)), RealtimeRuntime: ptrTo(int64(1000000))}})
	wantErr(t, err, "realtime")
}

func TestV1CheckBeforeUpdate(t *testing.T) {
	m := newV1(t)
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(512 * mib))}}))
	// v1 does not move charges with a task: the child allocates after it
	// is in the cgroup.
	c := startChild(t, "hold")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	usage := waitMemory(t, m.dir(cgroup1.Memory), "memory.usage_in_bytes", 16*mib)
	low := int64(usage/2) &^ 4095
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &low, CheckBeforeUpdate: ptrTo(true)}})
	wantErr(t, err, "below the current usage")
	wantFile(t, m.file(cgroup1.Memory, "memory.limit_in_bytes"), "536870912")
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(256 * mib)), CheckBeforeUpdate: ptrTo(true)}}))
	wantFile(t, m.file(cgroup1.Memory, "memory.limit_in_bytes"), "268435456")
}

func TestV1OOM(t *testing.T) {
	m := newV1(t)
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(8 * mib)), Swap: ptrTo(int64(8 * mib))}}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.OOM(ctx)
	ok(t, err)
	c := startChild(t, "alloc")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no OOM event within 10s")
	}
	if ws := c.wait(t, 10*time.Second); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("child ended with %v, want killed by SIGKILL", ws)
	}
	// The channel closes when ctx is done.
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatal("OOM channel still open 5s after ctx was cancelled")
		}
	}
}

func TestV1NestedInExistingParent(t *testing.T) {
	newV1(t) // root and v1 checks
	parent := testPath(t) + "-pod"
	pm, err := New("pod", parent, false)
	ok(t, err)
	// The parent exists first, with a limit of its own (a pod cgroup).
	ok(t, pm.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(300 * mib))}}))
	defer func() { ok(t, pm.Destroy()) }()

	m, err := New("ctr", parent+"/ctr", false)
	ok(t, err)
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(100 * mib))}, CPU: &specs.LinuxCPU{Cpus: "0"}}))
	wantFile(t, filepath.Join(m.Paths()["memory"], "memory.limit_in_bytes"), "104857600")
	wantFile(t, filepath.Join(m.Paths()["cpuset"], "cpuset.cpus"), "0")
	ok(t, m.Destroy())
	for _, dir := range m.Paths() {
		if exists(dir) {
			t.Errorf("%s still there after Destroy", dir)
		}
	}
	// The parent is left alone, limit included.
	wantFile(t, filepath.Join(pm.Paths()["memory"], "memory.limit_in_bytes"), "314572800")
}

func itoa(i int) string { return strconv.Itoa(i) }

// waitMemory waits until the cgroup's memory usage file reports at least
// min bytes (a child touching its memory) and returns the usage.
func waitMemory(t *testing.T, dir, file string, min uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		usage, err := readUint(dir, file)
		ok(t, err)
		if usage >= min {
			return usage
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s = %d, want at least %d within 20s", dir, file, usage, min)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestV1LoadPartlyRemoved(t *testing.T) {
	m := newV1(t)
	ok(t, m.Create())
	// The pids hierarchy lost the cgroup (say, an administrator removed
	// it); a later command still finds the processes through the others.
	ok(t, os.Remove(m.dir(cgroup1.Pids)))
	loaded, err := Load("test", testPath(t), false)
	ok(t, err)
	c := startChild(t, "sleep")
	ok(t, loaded.Apply(c.pid()))
	c.open(t)
	pids, err := loaded.Pids()
	ok(t, err)
	if !slices.Equal(pids, []int{c.pid()}) {
		t.Errorf("Pids() = %v, want [%d]", pids, c.pid())
	}
	if exists(m.dir(cgroup1.Pids)) {
		t.Error("a loaded manager recreated the removed pids cgroup")
	}
	ok(t, c.cmd.Process.Kill())
	c.wait(t, 5*time.Second)
}
