package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	systemdDbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// unitManager is the systemd driver: systemd owns the cgroup as a
// transient unit with Delegate=yes, started at Apply with the pid in it (a
// scope cannot exist empty); within it the cgroupfs manager does the rest,
// as runc's systemd driver does. On v1 that manager also creates the
// cgroup in the hierarchies systemd does not manage. Resources given
// before Apply are written right after the unit starts.
type unitManager struct {
	Manager     // the cgroupfs manager of the unit's cgroup
	slice, unit string
	units       units

	mu      sync.Mutex
	started bool
	pending *specs.LinuxResources
}

func openSystemdUnit(slice, unit string, load bool) (Manager, error) {
	path := filepath.Join(expandSlice(slice), unit)
	var inner Manager
	switch mode := Mode(); mode {
	case ModeV2:
		// systemd creates the cgroup; the v2 manager only uses it.
		m, err := openV2(path, true)
		if err != nil {
			return nil, err
		}
		inner = m
	case ModeV1, ModeHybrid:
		m, err := openV1(path, load)
		if err != nil {
			return nil, err
		}
		inner = m
	default:
		return nil, errors.New("cgroup: no cgroup filesystem mounted at /sys/fs/cgroup")
	}
	return &unitManager{Manager: inner, slice: slice, unit: unit, units: dbusUnits{}, started: load}, nil
}

// units starts and stops transient units; dbusUnits asks systemd.
type units interface {
	start(slice, unit string, pid int) error
	stop(unit string) error
}

type dbusUnits struct{}

func (dbusUnits) start(slice, unit string, pid int) error { return startUnit(slice, unit, pid) }
func (dbusUnits) stop(unit string) error                  { return stopUnit(unit) }

// expandSlice turns a-b.slice into /a.slice/a-b.slice, systemd's layout.
func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return "/"
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		prefix += part
		path += "/" + prefix + ".slice"
		prefix += "-"
	}
	return path
}

func (m *unitManager) Apply(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		if err := m.units.start(m.slice, m.unit, pid); err != nil {
			return err
		}
		m.started = true
	}
	// Also for a new unit: on v1 this joins the hierarchies systemd
	// leaves alone; elsewhere it is a no-op.
	if err := m.Manager.Apply(pid); err != nil {
		return err
	}
	if m.pending != nil {
		r := m.pending
		m.pending = nil
		return m.Manager.Set(r)
	}
	return nil
}

// Create cannot make a transient scope without a process in it: the unit
// is started by Apply.
func (m *unitManager) Create() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return nil
	}
	return errors.New("systemd cgroup driver: the cgroup is created by Apply (a scope needs a process)")
}

func (m *unitManager) Set(r *specs.LinuxResources) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		m.pending = r
		return nil
	}
	return m.Manager.Set(r)
}

func (m *unitManager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		if err := m.units.stop(m.unit); err != nil {
			return err
		}
		m.started = false
	}
	return m.Manager.Destroy()
}

func startUnit(slice, unit string, pid int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return fmt.Errorf("systemd cgroup driver: connect to systemd: %w", err)
	}
	defer conn.Close()
	props := []systemdDbus.Property{
		systemdDbus.PropDescription("railcar container " + unit),
		systemdDbus.PropSlice(slice),
		{Name: "DefaultDependencies", Value: dbus.MakeVariant(false)},
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		{Name: "MemoryAccounting", Value: dbus.MakeVariant(true)},
		{Name: "CPUAccounting", Value: dbus.MakeVariant(true)},
		{Name: "IOAccounting", Value: dbus.MakeVariant(true)},
		{Name: "TasksAccounting", Value: dbus.MakeVariant(true)},
		systemdDbus.PropPids(uint32(pid)),
	}
	ch := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, unit, "replace", props, ch); err != nil {
		return fmt.Errorf("systemd cgroup driver: start unit %s: %w", unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("systemd cgroup driver: start unit %s: job %s", unit, res)
		}
	case <-ctx.Done():
		return fmt.Errorf("systemd cgroup driver: start unit %s: %w", unit, ctx.Err())
	}
	return nil
}

func stopUnit(unit string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return fmt.Errorf("systemd cgroup driver: connect to systemd: %w", err)
	}
	defer conn.Close()
	ch := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		var dbusErr dbus.Error
		if errors.As(err, &dbusErr) && strings.Contains(dbusErr.Name, "NoSuchUnit") {
			return nil
		}
		return fmt.Errorf("systemd cgroup driver: stop unit %s: %w", unit, err)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return fmt.Errorf("systemd cgroup driver: stop unit %s: %w", unit, ctx.Err())
	}
	return nil
}
