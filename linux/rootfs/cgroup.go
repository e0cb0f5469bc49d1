package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// cgroupMode is the host's cgroup layout; tests on a hybrid host replace it
// to take the cgroup2 path, whose hierarchy is mounted there too.
var cgroupMode = cgroups.Mode

// mountCgroup mounts a "cgroup" spec mount: cgroup2 on a unified host, the
// v1 hierarchies (under a tmpfs) otherwise.
func (s *setup) mountCgroup(m *mount) error {
	if cgroupMode() == cgroups.Unified {
		return s.mountCgroup2(m)
	}
	return s.mountCgroup1(m)
}

func (s *setup) mountCgroup2(m *mount) error {
	dst, err := s.mountpoint(m)
	if err != nil {
		return err
	}
	defer dst.Close()
	mnt, err := s.mountPropagate(m, dst, "cgroup2", m.Flags, m.Data)
	if err == nil {
		return s.finishMount(m, mnt)
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EBUSY) {
		return err
	}
	// In a user namespace without its own cgroup namespace cgroup2 cannot
	// be mounted (runc issue 2158): bind the hierarchy instead, or only the
	// container's own cgroup, which is what a cgroup namespace would show.
	b := *m
	b.Type, b.Source = "bind", "/sys/fs/cgroup"
	// Recursive: a user namespace may not bind only part of a tree whose
	// submounts are locked (EINVAL).
	b.Flags |= unix.MS_BIND | unix.MS_REC
	if s.cgroupns {
		if _, own, perr := cgroups.ParseCgroupFileUnified("/proc/self/cgroup"); perr == nil && own != "" {
			b.Source = filepath.Join("/sys/fs/cgroup", own)
		}
	}
	return s.mountBind(&b, dst)
}

// v1Hierarchy is one cgroup v1 mount of the host and the container's own
// cgroup in it.
type v1Hierarchy struct {
	mountpoint string   // host mount point, e.g. /sys/fs/cgroup/cpu,cpuacct
	subsystems []string // as in /proc/self/cgroup: cpu, cpuacct, name=systemd
	source     string   // host path of the container's cgroup in it
}

// v1Hierarchies lists the hierarchies the init belongs to (runc's
// getCgroupMounts): the container sees only its own cgroup of each.
func v1Hierarchies() ([]v1Hierarchy, error) {
	own, _, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mis, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []v1Hierarchy
	for _, mi := range mis {
		var h v1Hierarchy
		for _, opt := range strings.Split(mi.VFSOptions, ",") {
			if _, ok := own[opt]; ok && !seen[opt] {
				seen[opt] = true
				h.subsystems = append(h.subsystems, opt)
			}
		}
		if len(h.subsystems) == 0 {
			continue
		}
		rel, err := filepath.Rel(mi.Root, own[h.subsystems[0]])
		if err != nil {
			return nil, err
		}
		h.mountpoint = mi.Mountpoint
		h.source = filepath.Join(mi.Mountpoint, rel)
		out = append(out, h)
	}
	return out, nil
}

// mountCgroup1 mounts a tmpfs at the destination and in it one directory
// per hierarchy: a fresh cgroup mount with a cgroup namespace, otherwise a
// bind of the container's own cgroup. Merged hierarchies (cpu,cpuacct) get
// a symlink per controller.
func (s *setup) mountCgroup1(m *mount) error {
	hs, err := v1Hierarchies()
	if err != nil {
		return &mountError{op: "mount", source: m.Source, target: m.Destination, err: err}
	}
	tmpfs := &mount{
		Source:      "tmpfs",
		Destination: m.Destination,
		Type:        "tmpfs",
		Flags:       unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | m.Flags&unix.MS_RDONLY,
		Data:        "mode=755",
		Propagation: m.Propagation,
	}
	if err := s.mountOne(tmpfs); err != nil {
		return err
	}
	for _, h := range hs {
		name := filepath.Base(h.mountpoint)
		dest := filepath.Join(cleanPath(m.Destination), name)
		if s.cgroupns {
			err = s.mountCgroup1Fresh(m, h, dest)
		} else {
			err = s.mountOne(&mount{
				Source:      h.source,
				Destination: dest,
				Type:        "bind",
				Flags:       unix.MS_BIND | unix.MS_REC | m.Flags,
				Cleared:     m.Cleared,
				Propagation: m.Propagation,
			})
		}
		if err != nil {
			return err
		}
		if !strings.Contains(name, ",") {
			continue
		}
		dir, err := mkdirAllInRoot(s.root, m.Destination, 0o755)
		if err != nil {
			return &mountError{op: "create", target: m.Destination, err: err}
		}
		for _, ss := range strings.Split(name, ",") {
			err := unix.Symlinkat(name, int(dir.Fd()), ss)
			if err != nil && !errors.Is(err, unix.EEXIST) {
				dir.Close()
				return fmt.Errorf("symlink %s: %w", filepath.Join(m.Destination, ss), err)
			}
		}
		dir.Close()
	}
	return nil
}

func (s *setup) mountCgroup1Fresh(m *mount, h v1Hierarchy, dest string) error {
	dst, err := mkdirAllInRoot(s.root, dest, 0o755)
	if err != nil {
		return &mountError{op: "create mountpoint", target: dest, err: err}
	}
	defer dst.Close()
	source, data := "cgroup", strings.Join(h.subsystems, ",")
	if strings.HasPrefix(data, "name=") {
		// A named hierarchy without controllers, e.g. name=systemd.
		source, data = strings.TrimPrefix(data, "name="), "none,"+data
	}
	flags := uintptr(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) | m.Flags&unix.MS_RDONLY
	return sysMount(source, dst, "", dest, "cgroup", flags, data)
}
