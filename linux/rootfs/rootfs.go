// Package rootfs builds the container's filesystem view from inside its
// init: mount propagation, the spec's mounts, /dev, pivot_root (or MS_MOVE
// and chroot), read-only and masked paths. It does what runc's
// prepareRootfs and finalizeRootfs do (libcontainer/rootfs_linux.go).
//
// Every destination is resolved inside the rootfs (pathrs-lite, openat2
// RESOLVE_IN_ROOT) and mounted onto /proc/self/fd/N of an O_PATH handle of
// the resolved inode, so a symlink placed or swapped in by the image cannot
// move a mount outside the root (CVE-2021-30465, CVE-2023-27561,
// CVE-2025-31133, CVE-2025-52565, CVE-2025-52881). Those magic links are
// only used before pivot_root, while /proc is still the runtime's procfs.
// After it, mounts use fd-based syscalls (open_tree, move_mount, fsopen,
// mount_setattr) and never name a path in the container's /proc.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is what Setup needs.
type Config struct {
	Spec    *specs.Spec // github.com/opencontainers/runtime-spec/specs-go
	Rootfs  string      // absolute host path of the container root filesystem
	NoPivot bool        // runc --no-pivot: MS_MOVE + chroot instead of pivot_root

	// BeforeReadonly, if set, runs after the root switch and before
	// anything is made read-only or masked: the place where runc's init
	// sets up the console (BindConsole) and writes sysctls, which fail
	// once / or /proc/sys is read-only.
	BeforeReadonly func() error

	// IDMapped holds, by index into Spec.Mounts, the detached mounts the
	// parent made: for the mounts with idmap, ridmap or mappings
	// (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) need the host's
	// privileges), and in a container with a user namespace for the other
	// bind mounts whose source the parent could open (the container's
	// root may not reach it). Setup moves them to their destinations.
	IDMapped map[int]*os.File

	// SharedMountNS is set when the spec has no mount namespace: the
	// container shares the runtime's. The mounts then land in that
	// namespace under the rootfs (the engine removes them on delete), the
	// root propagation is left alone and the root is entered by chroot.
	SharedMountNS bool
}

// Setup builds the container's root filesystem and enters it.
//
// Preconditions: it runs in the container's init, already in the
// container's new mount namespace (and user namespace, with the id maps
// written, as root there), before the workload's user and capabilities are
// applied; no other goroutine depends on the process root or cwd.
// Postconditions: the process root and cwd are the container's "/", the
// old root is detached (or, with NoPivot, hidden under the chroot), the
// umask is the spec's (0022 by default).
func Setup(c *Config) error {
	if c == nil || c.Spec == nil {
		return errors.New("rootfs: no spec")
	}
	if !filepath.IsAbs(c.Rootfs) {
		return fmt.Errorf("rootfs %q is not an absolute path", c.Rootfs)
	}
	rootPath, err := filepath.EvalSymlinks(c.Rootfs)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	s := &setup{c: c, rootPath: rootPath}
	defer s.close()
	if err := s.parse(); err != nil {
		return err
	}
	if err := checkHostProc(); err != nil {
		return fmt.Errorf("runtime /proc: %w", err)
	}
	if c.SharedMountNS {
		if spec := c.Spec; spec.Root != nil && spec.Root.Readonly {
			return errors.New("a read-only root needs a mount namespace")
		}
	} else if err := s.prepareRoot(); err != nil {
		return err
	}
	if s.root, err = os.OpenFile(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	for i, m := range s.mounts {
		if tree := c.IDMapped[i]; m.IDMap || tree != nil && m.Type == "bind" {
			err = s.mountIDMapped(m, tree)
		} else {
			err = s.mountOne(m)
		}
		if err != nil {
			return err
		}
	}
	if s.setupDev {
		if err := s.createDevices(); err != nil {
			return err
		}
	}
	if err := s.enterRoot(); err != nil {
		return err
	}
	return s.finalize()
}

// setup is the state of one Setup call.
type setup struct {
	c        *Config
	rootPath string   // the rootfs, symlinks resolved
	root     *os.File // O_PATH handle of the rootfs mount

	mounts     []*mount
	rootProp   uintptr // rootfsPropagation, 0 when unset
	userns     bool    // the spec has a user namespace
	ownNetns   bool    // ... and a new network namespace of its own
	cgroupns   bool    // the spec has a new cgroup namespace
	setupDev   bool    // /dev is not a bind mount: create the device nodes
	mountLabel string  // SELinux context for mounts, when SELinux is on

	readonlyLater []roMount // read-only applied at the end
}

// roMount is a mount made read-write for now, read-only at the end.
type roMount struct {
	f     *os.File
	name  string
	flags uintptr
}

func (s *setup) close() {
	if s.root != nil {
		s.root.Close()
	}
	for _, r := range s.readonlyLater {
		r.f.Close()
	}
}

// parse reads everything Setup needs from the spec before touching mounts.
func (s *setup) parse() error {
	spec := s.c.Spec
	s.setupDev = true
	for _, sm := range spec.Mounts {
		m, err := parseMount(sm)
		if err != nil {
			return err
		}
		if m.Type == "bind" && cleanPath(m.Destination) == "/dev" {
			s.setupDev = false
		}
		s.mounts = append(s.mounts, m)
	}
	if spec.Linux == nil {
		return nil
	}
	if p := spec.Linux.RootfsPropagation; p != "" {
		f, ok := propagationFlags[p]
		if !ok {
			return fmt.Errorf("rootfsPropagation %q is not supported", p)
		}
		if s.c.NoPivot && f&unix.MS_PRIVATE != 0 {
			return errors.New("rootfsPropagation of [r]private is not safe without pivot_root")
		}
		s.rootProp = f
	}
	for _, ns := range spec.Linux.Namespaces {
		switch ns.Type {
		case specs.UserNamespace:
			s.userns = true
		case specs.NetworkNamespace:
			s.ownNetns = ns.Path == ""
		case specs.CgroupNamespace:
			s.cgroupns = true
		}
	}
	if spec.Linux.MountLabel != "" && selinuxEnabled() {
		s.mountLabel = spec.Linux.MountLabel
	}
	return nil
}

// prepareRoot sets the propagation of / and binds the rootfs onto itself,
// which makes it a mount point that pivot_root accepts.
func (s *setup) prepareRoot() error {
	flags := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.rootProp != 0 {
		flags = s.rootProp
	}
	if err := sysMount("", nil, "/", "/", "", flags, ""); err != nil {
		return err
	}
	// The rootfs's parent mount must not be shared: pivot_root refuses a
	// shared parent, and our bind of the rootfs would propagate (leak) to
	// the host.
	parent := uintptr(unix.MS_PRIVATE)
	if s.rootProp&unix.MS_SLAVE != 0 {
		parent = unix.MS_SLAVE
	}
	p := s.rootPath
	for {
		// EINVAL means p is not a mount point: try its parent.
		err := ignoringEINTR(func() error { return unix.Mount("", p, "", parent, "") })
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINVAL) || p == "/" {
			return &mountError{op: "set propagation of", target: p, err: err}
		}
		p = filepath.Dir(p)
	}
	return sysMount(s.rootPath, nil, s.rootPath, "/", "bind", unix.MS_BIND|unix.MS_REC, "")
}

// withLabel appends the SELinux mount context to mount data.
func (s *setup) withLabel(data string) string {
	if s.mountLabel == "" {
		return data
	}
	if data == "" {
		return fmt.Sprintf("context=%q", s.mountLabel)
	}
	return fmt.Sprintf("%s,context=%q", data, s.mountLabel)
}

// selinuxEnabled reports whether selinuxfs is mounted where the kernel
// puts it, which is how libselinux decides too.
func selinuxEnabled() bool {
	const selinuxMagic = 0xf97cff8c
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/selinux", &st); err != nil {
		return false
	}
	return uint32(st.Type) == selinuxMagic
}

// isDevNull reports whether st is the null device, 1:3.
func isDevNull(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)
}
