package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The v2 manager is tested on a v2 host (a qemu guest, see
// /work/shared/recipes/cgroup2-vm) and on a hybrid host's unified tree
// (/sys/fs/cgroup/unified). The latter has no controllers, so there the
// tests cover placement, freezing, cpu.stat, the eBPF device program,
// unified keys and removal; the TestV2Host* tests need a v2 host.
const hybridUnified = "/sys/fs/cgroup/unified"

// newV2Test returns a v2 manager for a fresh test cgroup on either kind of
// host, destroyed at the end.
func newV2Test(t *testing.T) *v2 {
	t.Helper()
	if Mode() == ModeV2 {
		return newV2Host(t)
	}
	return newV2Hybrid(t)
}

func newV2Host(t *testing.T) *v2 {
	t.Helper()
	needRoot(t)
	if Mode() != ModeV2 {
		t.Skipf("host cgroup mode is %s, not v2", Mode())
	}
	mgr, err := New("test", testPath(t), false)
	ok(t, err)
	m := mgr.(*v2)
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

func newV2Hybrid(t *testing.T) *v2 {
	t.Helper()
	needRoot(t)
	if Mode() != ModeHybrid {
		t.Skipf("host cgroup mode is %s; these tests use a hybrid host's unified tree", Mode())
	}
	m, err := openV2At(hybridUnified, testPath(t), false)
	ok(t, err)
	m.delegate = false
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

func TestV2Lifecycle(t *testing.T) {
	m := newV2Test(t)
	ok(t, m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.depth": "3"}}))
	wantFile(t, filepath.Join(m.dir, "cgroup.max.depth"), "3")

	c := startChild(t, "sleep")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	if s := readT(t, "/proc/"+itoa(c.pid())+"/cgroup"); !strings.Contains(s, "0::"+m.path+"\n") && !strings.HasSuffix(s, "0::"+m.path) {
		t.Errorf("/proc/%d/cgroup = %q, want 0::%s", c.pid(), s, m.path)
	}
	pids, err := m.Pids()
	ok(t, err)
	if !slices.Equal(pids, []int{c.pid()}) {
		t.Errorf("Pids() = %v, want [%d]", pids, c.pid())
	}

	ok(t, m.Freeze())
	if ev := readT(t, filepath.Join(m.dir, "cgroup.events")); !strings.Contains(ev, "frozen 1") {
		t.Errorf("cgroup.events after Freeze = %q, want frozen 1", ev)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v after Freeze", frozen, err)
	}
	ok(t, m.Thaw())
	if ev := readT(t, filepath.Join(m.dir, "cgroup.events")); !strings.Contains(ev, "frozen 0") {
		t.Errorf("cgroup.events after Thaw = %q, want frozen 0", ev)
	}

	st, err := m.Stats()
	ok(t, err)
	if st.CPU.Usage.Total == 0 {
		t.Errorf("Stats cpu usage = %+v, want non-zero", st.CPU.Usage)
	}
	mt, err := m.Metrics()
	ok(t, err)
	if v2m, isV2 := mt.(*v2stats.Metrics); !isV2 || v2m.CPU.UsageUsec == 0 {
		t.Errorf("Metrics = %T %+v, want v2 metrics with cpu usage", mt, mt)
	}

	wantErr(t, m.Destroy(), "busy")
	ok(t, c.cmd.Process.Kill())
	c.wait(t, 5*time.Second)
	ok(t, m.Destroy())
	if exists(m.dir) {
		t.Errorf("%s still there after Destroy", m.dir)
	}
	ok(t, m.Destroy())
}

func TestV2SetRefuses(t *testing.T) {
	m := newV2Test(t)
	ok(t, m.Create())
	for _, tc := range []struct {
		name string
		r    specs.LinuxResources
		want string
	}{
		{"missing controller", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptrTo(uint32(1))}}}, "needs the rdma controller"},
		{"realtime", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptrTo(int64(1))}}, "realtimeRuntime/realtimePeriod is not supported on cgroup v2"},
		{"network", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptrTo(uint32(1))}}, "network (net_cls/net_prio exist only on v1)"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptrTo(uint64(1))}}, "swappiness is not supported"},
		{"unified key", specs.LinuxResources{Unified: map[string]string{"../x": "1"}}, `invalid key "../x"`},
		{"swap without limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptrTo(int64(mib))}}, "swap needs a memory limit"},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptrTo(int64(2 * mib)), Swap: ptrTo(int64(mib))}}, "is below the memory limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "missing controller" && slices.Contains(strings.Fields(readT(t, filepath.Join(m.dir, "cgroup.controllers"))), "rdma") {
				t.Skip("this host has the rdma controller")
			}
			if strings.HasPrefix(tc.name, "swap ") && Mode() != ModeV2 {
				t.Skip("needs the memory controller")
			}
			wantErr(t, m.Set(&tc.r), tc.want)
		})
	}
}

func TestV2Devices(t *testing.T) {
	m := newV2Test(t)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptrTo(int64(1)), Minor: ptrTo(int64(3)), Access: "rwm"}, // /dev/null
	}
	ok(t, m.Set(&specs.LinuxResources{Devices: rules}))
	openIn(t, m, "/dev/null", true)
	openIn(t, m, "/dev/zero", false)

	// Widening the rules works only if the old program is gone.
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptrTo(int64(1)), Minor: ptrTo(int64(5)), Access: "rwm"})
	ok(t, m.Set(&specs.LinuxResources{Devices: rules}))
	openIn(t, m, "/dev/zero", true)
	if n := devicePrograms(t, m.dir); n != 1 {
		t.Errorf("%d device programs attached, want 1", n)
	}
}

// openIn runs a child in m that opens path, and checks the outcome.
func openIn(t *testing.T, m Manager, path string, want bool) {
	t.Helper()
	c := startChild(t, "open:"+path)
	ok(t, m.Apply(c.pid()))
	c.open(t)
	ws := c.wait(t, 5*time.Second)
	if got := ws.Exited() && ws.ExitStatus() == 0; got != want {
		t.Errorf("open %s in the cgroup: succeeded=%v (status %v), want %v", path, got, ws, want)
	}
}

func devicePrograms(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	ok(t, err)
	defer unix.Close(fd)
	res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	ok(t, err)
	return len(res.Programs)
}

func TestV2OOMNeedsMemoryController(t *testing.T) {
	m := newV2Hybrid(t)
	_, err := m.OOM(context.Background())
	wantErr(t, err, "memory controller is not enabled")
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "/railcar/c1", ""},
		{"/k8s.io/c1", "/k8s.io/c1", ""},
		{"kubepods/pod1/c1", "/kubepods/pod1/c1", ""},
		{"/a/../../b", "/b", ""},
		{"/", "", "names the hierarchy root"},
		{"system.slice:docker:c1", "", "use the systemd cgroup driver"},
	} {
		got, err := fsPath("c1", tc.in)
		if tc.err != "" {
			wantErr(t, err, tc.err)
			continue
		}
		ok(t, err)
		if got != tc.want {
			t.Errorf("fsPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, slice, unit, err string }{
		{"", "system.slice", "railcar-c1.scope", ""},
		{"kubepods-besteffort.slice:cri-containerd:abc", "kubepods-besteffort.slice", "cri-containerd-abc.scope", ""},
		{":railcar:c1", "system.slice", "railcar-c1.scope", ""},
		{"machine.slice::c1", "machine.slice", "c1.scope", ""},
		{"user.slice:x:y.slice", "user.slice", "y.slice", ""},
		{"/a/b", "", "", "is not slice:prefix:name"},
		{"notaslice:a:b", "", "", "is not a slice"},
	} {
		slice, unit, err := systemdPath("c1", tc.in)
		if tc.err != "" {
			wantErr(t, err, tc.err)
			continue
		}
		ok(t, err)
		if slice != tc.slice || unit != tc.unit {
			t.Errorf("systemdPath(%q) = %q, %q, want %q, %q", tc.in, slice, unit, tc.slice, tc.unit)
		}
	}
	for in, want := range map[string]string{
		"system.slice":              "/system.slice",
		"kubepods-besteffort.slice": "/kubepods.slice/kubepods-besteffort.slice",
		"-.slice":                   "/",
	} {
		if got := expandSlice(in); got != want {
			t.Errorf("expandSlice(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSystemdDriverWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs on this host")
	}
	_, err := New("c1", "", true)
	wantErr(t, err, "systemd is not running on this host")
	_, err = Load("c1", "system.slice:railcar:c1", true)
	wantErr(t, err, "systemd is not running on this host")
}

func TestParseSet(t *testing.T) {
	for in, want := range map[string][]uint16{
		"0":         {0},
		"0-3":       {0, 1, 2, 3},
		"0-1,4,6-7": {0, 1, 4, 6, 7},
		"":          nil,
		"3-1,x,5":   {5},
	} {
		if got := parseSet(in); !slices.Equal(got, want) {
			t.Errorf("parseSet(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestV2NestedInExistingParent(t *testing.T) {
	pm := newV2Test(t) // the pod's cgroup, there first
	ok(t, pm.Create())
	m, err := openV2At(pm.root, pm.path+"/ctr", false)
	ok(t, err)
	m.delegate = pm.delegate
	ok(t, m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "2"}}))
	wantFile(t, filepath.Join(pm.dir, "ctr", "cgroup.max.descendants"), "2")
	c := startChild(t, "sleep")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	// The parent lists the child's processes too (recursively).
	if pids, err := pm.Pids(); err != nil || !slices.Equal(pids, []int{c.pid()}) {
		t.Errorf("parent Pids() = %v, %v; want [%d]", pids, err, c.pid())
	}
	ok(t, c.cmd.Process.Kill())
	c.wait(t, 5*time.Second)
	ok(t, m.Destroy())
	if exists(m.dir) || !exists(pm.dir) {
		t.Errorf("after Destroy: %s exists=%v (want false), parent %s exists=%v (want true)", m.dir, exists(m.dir), pm.dir, exists(pm.dir))
	}
}
