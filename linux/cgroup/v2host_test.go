package cgroup

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These need a cgroup v2 host with the usual controllers (the qemu lane).

func TestV2HostSetReadBack(t *testing.T) {
	m := newV2Host(t)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit:       ptrTo(int64(64 * mib)),
			Reservation: ptrTo(int64(32 * mib)),
			Swap:        ptrTo(int64(96 * mib)),
			Kernel:      ptrTo(int64(mib)), // no v2 knob: ignored
		},
		CPU: &specs.LinuxCPU{
			Shares: ptrTo(uint64(1024)),
			Quota:  ptrTo(int64(50000)),
			Period: ptrTo(uint64(100000)),
			Burst:  ptrTo(uint64(10000)),
			Cpus:   "0",
			Mems:   "0",
		},
		Pids:           &specs.LinuxPids{Limit: ptrTo(int64(100))},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 * mib}},
		Unified:        map[string]string{"memory.high": "50331648"},
	}
	ok(t, m.Set(r))
	f := func(name string) string { return filepath.Join(m.dir, name) }
	wantFile(t, f("memory.max"), "67108864")
	wantFile(t, f("memory.low"), "33554432")
	wantFile(t, f("memory.high"), "50331648")
	if exists(f("memory.swap.max")) {
		wantFile(t, f("memory.swap.max"), "33554432") // memory+swap 96 MiB - memory 64 MiB
	}
	wantFile(t, f("cpu.weight"), "100") // the default shares give the default weight (runc 1.3+, crun)
	wantFile(t, f("cpu.max"), "50000 100000")
	wantFile(t, f("cpu.max.burst"), "10000")
	wantFile(t, f("cpuset.cpus"), "0")
	wantFile(t, f("cpuset.mems"), "0")
	wantFile(t, f("pids.max"), "100")
	wantFile(t, f("hugetlb.2MB.max"), "4194304")
	if exists(f("hugetlb.2MB.rsvd.max")) {
		wantFile(t, f("hugetlb.2MB.rsvd.max"), "4194304")
	}

	// Update: -1 means max; a quota alone keeps the period.
	ok(t, m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptrTo(int64(-1))},
		CPU:    &specs.LinuxCPU{Quota: ptrTo(int64(-1)), Idle: ptrTo(int64(1))},
		Pids:   &specs.LinuxPids{Limit: ptrTo(int64(-1))},
	}))
	wantFile(t, f("memory.max"), "max")
	if exists(f("memory.swap.max")) {
		wantFile(t, f("memory.swap.max"), "max")
	}
	wantFile(t, f("cpu.max"), "max 100000")
	ok(t, m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptrTo(int64(20000)), Period: ptrTo(uint64(0))}}))
	wantFile(t, f("cpu.max"), "20000 100000")
	ok(t, m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptrTo(int64(0)), Period: ptrTo(uint64(50000))}}))
	wantFile(t, f("cpu.max"), "20000 50000")
	wantFile(t, f("cpu.idle"), "1")
	wantFile(t, f("pids.max"), "max")

	if exists(f("io.weight")) || exists(f("io.bfq.weight")) {
		ok(t, m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptrTo(uint16(1000))}}))
		if exists(f("io.bfq.weight")) {
			if s := readT(t, f("io.bfq.weight")); !strings.Contains(s, "1000") {
				t.Errorf("io.bfq.weight = %q, want 1000", s)
			}
		} else if s := readT(t, f("io.weight")); !strings.Contains(s, "default 10000") {
			t.Errorf("io.weight = %q, want default 10000", s)
		}
	}
}

func TestV2HostStatsAndCheckBeforeUpdate(t *testing.T) {
	m := newV2Host(t)
	ok(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(512 * mib))}, Pids: &specs.LinuxPids{Limit: ptrTo(int64(64))}}))
	c := startChild(t, "hold")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	usage := waitMemory(t, m.dir, "memory.current", 16*mib)
	st, err := m.Stats()
	ok(t, err)
	if st.CPU.Usage.Total == 0 || st.Memory.Usage.Usage < 16*mib || st.Memory.Usage.Limit != 512*mib || st.Pids.Current < 1 || st.Pids.Limit != 64 {
		t.Errorf("Stats: cpu %d, memory %d/%d, pids %d/%d", st.CPU.Usage.Total, st.Memory.Usage.Usage, st.Memory.Usage.Limit, st.Pids.Current, st.Pids.Limit)
	}
	if st.Memory.Raw["anon"] == 0 {
		t.Errorf("Stats memory raw = %v, want anon > 0", st.Memory.Raw)
	}

	low := int64(usage/2) &^ 4095
	wantErr(t, m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &low, CheckBeforeUpdate: ptrTo(true)}}), "below the current usage")
	wantFile(t, filepath.Join(m.dir, "memory.max"), "536870912")
}

func TestV2HostOOM(t *testing.T) {
	m := newV2Host(t)
	// memory+swap = memory: no swap.
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
	case <-time.After(30 * time.Second):
		t.Fatal("no OOM event within 30s")
	}
	if ws := c.wait(t, 30*time.Second); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("child ended with %v, want killed by SIGKILL", ws)
	}
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
