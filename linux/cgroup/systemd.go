package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// systemdPath splits a systemd-driver cgroupsPath "slice:prefix:name" into
// the slice and the unit: prefix-name.scope, or name itself when it is a
// slice. Empty means system.slice:railcar:<id>.
func systemdPath(id, p string) (slice, unit string, err error) {
	if p == "" {
		p = "system.slice:railcar:" + id
	}
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", "", fmt.Errorf("cgroup: systemd cgroupsPath %q is not slice:prefix:name", p)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") {
		return "", "", fmt.Errorf("cgroup: systemd cgroupsPath %q: %q is not a slice", p, slice)
	}
	if name == "" || strings.Contains(name, "/") || strings.Contains(prefix, "/") {
		return "", "", fmt.Errorf("cgroup: systemd cgroupsPath %q: bad unit name", p)
	}
	if strings.HasSuffix(name, ".slice") {
		return slice, name, nil
	}
	if prefix == "" {
		return slice, name + ".scope", nil
	}
	return slice, prefix + "-" + name + ".scope", nil
}

// systemdRunning reports why the systemd driver cannot be used, or nil.
func systemdRunning() error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return errors.New("systemd cgroup driver: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver")
	}
	if os.Getenv("DBUS_SYSTEM_BUS_ADDRESS") == "" {
		if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil {
			return errors.New("systemd cgroup driver: no D-Bus system bus (no /run/dbus/system_bus_socket); use the cgroupfs driver")
		}
	}
	return nil
}

func openSystemd(id, cgroupsPath string, load bool) (Manager, error) {
	slice, unit, err := systemdPath(id, cgroupsPath)
	if err != nil {
		return nil, err
	}
	if err := systemdRunning(); err != nil {
		return nil, err
	}
	return openSystemdUnit(slice, unit, load)
}
