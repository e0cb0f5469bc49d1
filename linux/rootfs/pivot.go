package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// enterRoot makes the rootfs the process root, by pivot_root or, with
// NoPivot, by MS_MOVE and chroot, then applies a shared or unbindable
// rootfsPropagation, which has to act on the new "/".
func (s *setup) enterRoot() error {
	if err := unix.Fchdir(int(s.root.Fd())); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	var err error
	if s.c.SharedMountNS {
		// Not our mount namespace: nothing may be moved or pivoted.
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	if s.c.NoPivot {
		err = s.moveRoot()
	} else {
		err = pivotRoot()
	}
	if err != nil {
		return fmt.Errorf("enter rootfs: %w", err)
	}
	// Private and slave were applied before the rootfs bind already; doing
	// this before the switch would have made the host's / shared.
	if s.rootProp != 0 && s.rootProp&(unix.MS_PRIVATE|unix.MS_SLAVE) == 0 {
		if err := sysMount("", nil, "/", "/", "", s.rootProp, ""); err != nil {
			return err
		}
	}
	return nil
}

// pivotRoot switches to the rootfs, which is the cwd, with
// pivot_root(".", "."): the old root ends up stacked on the new one, where
// it is detached right away, so no directory is needed in the rootfs for it
// (an idea of the LXC developers, as runc notes).
func pivotRoot() error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(".", unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The kernel leaves the cwd on the old root, but do not rely on it.
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// Make the old root a slave first so that detaching it cannot unmount
	// anything on the host. Slave, not private: private can race with host
	// processes still using those mounts (devicemapper, runc notes).
	if err := sysMount("", nil, ".", "old root", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Unmount(".", unix.MNT_DETACH) }); err != nil {
		return &mountError{op: "unmount", target: "old root", err: err}
	}
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	return unix.Chdir("/")
}

// moveRoot is --no-pivot: the rootfs is moved over / and chrooted into. The
// host's full procfs and sysfs mounts stay reachable in this mount
// namespace, and the kernel lets a chrooted process mount a new procfs
// while a full one is visible, so they are detached (or covered) first.
func (s *setup) moveRoot() error {
	mis, err := mountinfo.GetMounts(func(mi *mountinfo.Info) (bool, bool) {
		skip := mi.Root != "/" || (mi.FSType != "proc" && mi.FSType != "sysfs") ||
			mi.Mountpoint == s.rootPath || strings.HasPrefix(mi.Mountpoint, s.rootPath+"/")
		return skip, false
	})
	if err != nil {
		return err
	}
	for _, mi := range mis {
		p := mi.Mountpoint
		if err := unix.Mount("", p, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // under a mount already detached
			}
			return &mountError{op: "set propagation of", target: p, err: err}
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
				return &mountError{op: "unmount", target: p, err: err}
			}
			// Locked in a user namespace: cover it instead.
			if err := unix.Mount("tmpfs", p, "tmpfs", 0, ""); err != nil {
				return &mountError{op: "mount", source: "tmpfs", target: p, err: err}
			}
		}
	}
	if err := sysMount(s.rootPath, nil, "/", "/", "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return &os.PathError{Op: "chroot", Path: s.rootPath, Err: err}
	}
	return unix.Chdir("/")
}
