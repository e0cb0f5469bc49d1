package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeUnits stands in for systemd: start creates the unit's cgroup (every
// hierarchy, with Delegate=yes) with the pid in it, as systemd does.
type fakeUnits struct {
	dirs    map[string]string
	started []string
	stopped []string
}

func (f *fakeUnits) start(slice, unit string, pid int) error {
	f.started = append(f.started, fmt.Sprintf("%s/%s:%d", slice, unit, pid))
	if d, ok := f.dirs[""]; ok && Mode() == ModeV2 {
		// systemd enables the accounted controllers for the unit.
		parent := filepath.Dir(d)
		avail, err := readFile(parent, "cgroup.controllers")
		if err != nil {
			return err
		}
		for _, c := range strings.Fields(avail) {
			if err := writeFile(parent, "cgroup.subtree_control", "+"+c); err != nil {
				return err
			}
		}
	}
	for _, d := range f.dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if d, ok := f.dirs[""]; ok {
		return writeFile(d, "cgroup.procs", strconv.Itoa(pid))
	}
	return nil
}

func (f *fakeUnits) stop(unit string) error {
	f.stopped = append(f.stopped, unit)
	return nil
}

func TestSystemdUnitManager(t *testing.T) {
	needRoot(t)
	unit := fmt.Sprintf("railcartest-%d.scope", os.Getpid())
	mgr, err := openSystemdUnit("-.slice", unit, false)
	ok(t, err)
	m := mgr.(*unitManager)
	if m.Path() != "/"+unit {
		t.Fatalf("Path() = %q, want /%s", m.Path(), unit)
	}
	fake := &fakeUnits{dirs: m.Paths()}
	m.units = fake
	t.Cleanup(func() { _ = m.Manager.Destroy() })

	wantErr(t, m.Create(), "created by Apply")
	// Before the unit exists, resources wait for it.
	ok(t, m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptrTo(int64(7))}}))
	pidsDir := m.Paths()["pids"]
	if Mode() == ModeV2 {
		pidsDir = m.Paths()[""]
	}
	if exists(pidsDir) {
		t.Fatalf("%s exists before Apply", pidsDir)
	}

	c := startChild(t, "sleep")
	ok(t, m.Apply(c.pid()))
	c.open(t)
	if want := fmt.Sprintf("-.slice/%s:%d", unit, c.pid()); !slices.Equal(fake.started, []string{want}) {
		t.Errorf("units started: %v, want [%s]", fake.started, want)
	}
	wantFile(t, filepath.Join(pidsDir, "pids.max"), "7")
	pids, err := m.Pids()
	ok(t, err)
	if !slices.Equal(pids, []int{c.pid()}) {
		t.Errorf("Pids() = %v, want [%d]", pids, c.pid())
	}
	ok(t, m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptrTo(int64(9))}}))
	wantFile(t, filepath.Join(pidsDir, "pids.max"), "9")

	// A later command loads the unit as started: Destroy stops it.
	loaded, err := openSystemdUnit("-.slice", unit, true)
	ok(t, err)
	lm := loaded.(*unitManager)
	lf := &fakeUnits{}
	lm.units = lf
	ok(t, c.cmd.Process.Kill())
	c.wait(t, 5*time.Second)
	ok(t, lm.Destroy())
	if !slices.Equal(lf.stopped, []string{unit}) {
		t.Errorf("units stopped: %v, want [%s]", lf.stopped, unit)
	}
	for name, d := range m.Paths() {
		if exists(d) {
			t.Errorf("%s: %s still there after Destroy", name, d)
		}
	}
}
