package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mounts whose read-only flag is applied at the end (runc's finalizeRootfs):
// /dev gets device nodes and tmpfs mounts get their mode first.
func deferReadonly(m *mount) bool {
	return m.Type == "tmpfs" || cleanPath(m.Destination) == "/dev"
}

// mountOne performs one spec mount inside the root.
func (s *setup) mountOne(m *mount) error {
	switch m.Type {
	case "proc", "sysfs":
		return s.mountProcSys(m)
	case "cgroup":
		return s.mountCgroup(m)
	}
	dst, err := s.mountpoint(m)
	if err != nil {
		return err
	}
	defer dst.Close()
	if m.Type == "bind" {
		return s.mountBind(m, dst)
	}
	if m.CopyUp && m.Type != "tmpfs" {
		return &mountError{op: "mount", source: m.Source, target: m.Destination,
			err: errors.New("tmpcopyup is only valid for tmpfs")}
	}
	data := m.Data
	if m.Type != "mqueue" {
		data = s.withLabel(data)
	}
	var under *os.File
	if m.CopyUp {
		// The directory we are about to cover stays reachable through
		// this handle; its contents are copied into the new tmpfs.
		if under, err = reopenDir(dst); err != nil {
			return &mountError{op: "tmpcopyup", target: m.Destination, err: err}
		}
		defer under.Close()
	}
	mnt, err := s.mountPropagate(m, dst, m.Type, m.Flags, data)
	if err != nil {
		return err
	}
	if under != nil {
		if err := copyUp(under, mnt); err != nil {
			mnt.Close()
			return &mountError{op: "tmpcopyup", target: m.Destination, err: err}
		}
	}
	return s.finishMount(m, mnt)
}

// mountIDMapped moves the detached mount the parent made for m (id-mapped,
// or a plain copy of the source) onto its destination, then applies the
// options as for a bind mount.
func (s *setup) mountIDMapped(m *mount, tree *os.File) error {
	if tree == nil {
		return &mountError{op: "mount", source: m.Source, target: m.Destination,
			err: errors.New("id-mapped mount was not prepared (it needs a bind mount and a user namespace)")}
	}
	m.Tree = tree
	dst, err := s.mountpoint(m)
	if err != nil {
		return err
	}
	defer dst.Close()
	err = ignoringEINTR(func() error {
		return unix.MoveMount(int(tree.Fd()), "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	})
	if err != nil {
		return &mountError{op: "move id-mapped mount", source: m.Source, target: m.Destination, err: err}
	}
	mnt, err := s.reopenAfterMount(dst, m.Destination)
	if err != nil {
		return err
	}
	for _, p := range m.Propagation {
		if err := sysMount("", mnt, "", m.Destination, "", p, ""); err != nil {
			mnt.Close()
			return err
		}
	}
	if m.Flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 || m.Cleared != 0 {
		if err := remountBind(m, mnt); err != nil {
			mnt.Close()
			return err
		}
	}
	return s.finishMount(m, mnt)
}

// finishMount applies the recursive attributes and keeps the handle of
// mounts that become read-only at the end; it consumes mnt.
func (s *setup) finishMount(m *mount, mnt *os.File) error {
	if m.RecAttr != nil {
		err := ignoringEINTR(func() error {
			return unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, m.RecAttr)
		})
		if err != nil {
			mnt.Close()
			return &mountError{op: "set recursive attributes of", target: m.Destination, err: err}
		}
	}
	if m.Flags&unix.MS_RDONLY != 0 && deferReadonly(m) {
		s.readonlyLater = append(s.readonlyLater, roMount{f: mnt, name: m.Destination, flags: m.Flags})
		return nil
	}
	mnt.Close()
	return nil
}

// mountpoint resolves the destination of m inside the root, creating it if
// missing (a file for file binds, a directory otherwise), and returns a
// handle to it (runc's createOpenMountpoint).
func (s *setup) mountpoint(m *mount) (_ *os.File, retErr error) {
	dst, err := openInRoot(s.root, m.Destination, unix.O_PATH)
	if err == nil && m.Type == "tmpfs" {
		// A tmpfs takes the mode of the directory it covers.
		var st unix.Stat_t
		if err := unix.Fstat(int(dst.Fd()), &st); err != nil {
			dst.Close()
			return nil, &mountError{op: "stat", target: m.Destination, err: err}
		}
		mode := fmt.Sprintf("mode=%04o", st.Mode&0o7777)
		if m.Data != "" {
			mode += "," + m.Data
		}
		m.Data = mode
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, &mountError{op: "open mountpoint", target: m.Destination, err: err}
		}
		dst, err = s.createMountpoint(m)
		if err != nil {
			return nil, err
		}
	}
	defer func() {
		if retErr != nil {
			dst.Close()
		}
	}()
	real, err := realPath(dst)
	if err != nil {
		return nil, &mountError{op: "resolve mountpoint", target: m.Destination, err: err}
	}
	if !inRoot(s.rootPath, real) {
		return nil, &mountError{op: "mount", source: m.Source, target: m.Destination,
			err: fmt.Errorf("mountpoint %s is outside the rootfs", real)}
	}
	if real == s.rootPath {
		return nil, &mountError{op: "mount", source: m.Source, target: m.Destination,
			err: errors.New("mountpoint is the root of the rootfs")}
	}
	if err := s.checkProcMount(real, m); err != nil {
		return nil, err
	}
	return dst, nil
}

func (s *setup) createMountpoint(m *mount) (*os.File, error) {
	isFile := false
	if m.Type == "bind" {
		var st unix.Stat_t
		var err error
		if m.Tree != nil {
			err = unix.Fstat(int(m.Tree.Fd()), &st)
		} else {
			err = unix.Stat(m.Source, &st)
		}
		if err != nil {
			// Nothing to bind: say so rather than create a mountpoint.
			return nil, &mountError{op: "mount", source: m.Source, target: m.Destination, err: &os.PathError{Op: "stat", Path: m.Source, Err: err}}
		}
		isFile = st.Mode&unix.S_IFMT != unix.S_IFDIR
	}
	if !isFile {
		d, err := mkdirAllInRoot(s.root, m.Destination, 0o755)
		if err != nil {
			return nil, &mountError{op: "create mountpoint", target: m.Destination, err: err}
		}
		return d, nil
	}
	dir, base, err := mkdirParentInRoot(s.root, m.Destination, true)
	if err != nil {
		return nil, &mountError{op: "create mountpoint", target: m.Destination, err: err}
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err != nil {
		return nil, &mountError{op: "create mountpoint", target: m.Destination, err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), base)), nil
}

// mountPropagate mounts onto dst, then applies the propagation options to
// the new mount, and returns a handle to the root of the new mount.
func (s *setup) mountPropagate(m *mount, dst *os.File, fstype string, flags uintptr, data string) (*os.File, error) {
	if deferReadonly(m) {
		flags &^= unix.MS_RDONLY
	}
	if err := sysMount(m.Source, dst, "", m.Destination, fstype, flags, data); err != nil {
		return nil, err
	}
	mnt, err := s.reopenAfterMount(dst, m.Destination)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Propagation {
		if err := sysMount("", mnt, "", m.Destination, "", p, ""); err != nil {
			mnt.Close()
			return nil, err
		}
	}
	return mnt, nil
}

// reopenAfterMount returns a handle to what now sits at the path of dst,
// the root of the mount just made there: dst itself still names the
// directory underneath. The path is resolved again inside the root and must
// not have moved meanwhile.
func (s *setup) reopenAfterMount(dst *os.File, name string) (*os.File, error) {
	real, err := realPath(dst)
	if err != nil {
		return nil, &mountError{op: "reopen mountpoint", target: name, err: err}
	}
	rel, err := filepath.Rel(s.rootPath, real)
	if err != nil || !inRoot(s.rootPath, real) {
		return nil, &mountError{op: "reopen mountpoint", target: name, err: fmt.Errorf("%s is outside the rootfs", real)}
	}
	mnt, err := openInRoot(s.root, rel, unix.O_PATH)
	if err != nil {
		return nil, &mountError{op: "reopen mountpoint", target: name, err: err}
	}
	if again, err := realPath(mnt); err != nil || again != real {
		mnt.Close()
		return nil, &mountError{op: "reopen mountpoint", target: name, err: errors.New("mountpoint moved during the mount")}
	}
	return mnt, nil
}

// mountBind bind-mounts m.Source onto dst and then applies the options: a
// bind mount ignores them, so a MS_BIND|MS_REMOUNT follows.
func (s *setup) mountBind(m *mount, dst *os.File) error {
	mnt, err := s.mountPropagate(m, dst, "bind", m.Flags, "")
	if err != nil {
		return err
	}
	if m.Flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 || m.Cleared != 0 {
		if err := remountBind(m, mnt); err != nil {
			mnt.Close()
			return err
		}
	}
	return s.finishMount(m, mnt)
}

const (
	atimeEnumFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME
	atimeFlags     = atimeEnumFlags | unix.MS_NODIRATIME
	// Flags the kernel locks on mounts inherited from a more privileged
	// user namespace (MNT_LOCK_*): a remount may not clear them.
	lockedFlags = unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOSUID | atimeFlags
)

// remountBind sets exactly the requested flags on a bind mount, as
// "mount --bind -o ..." means to. If that fails because the source's flags
// are locked (in a user namespace), it retries with them kept, unless the
// spec explicitly asked to clear one of them (runc's behaviour).
func remountBind(m *mount, mnt *os.File) error {
	flags := m.Flags | unix.MS_BIND | unix.MS_REMOUNT
	err := sysMount("", mnt, "", m.Destination, "", flags, "")
	if err == nil {
		return nil
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(m.Source, &st); serr != nil {
		return err
	}
	src := statfsToMountFlags(st)
	if cannot := src & m.Cleared & lockedFlags; cannot != 0 {
		return fmt.Errorf("%w (the source's flags %#x are locked)", err, cannot)
	}
	if m.Flags&atimeFlags != 0 && m.Flags&atimeFlags != src&atimeFlags {
		return fmt.Errorf("%w (the source's atime flags are locked)", err)
	}
	return sysMount("", mnt, "", m.Destination, "", flags|src&lockedFlags, "")
}

// statfsToMountFlags converts statfs f_flags to MS_* flags.
func statfsToMountFlags(st unix.Statfs_t) uintptr {
	const stNoSymfollow = 0x2000
	var flags uintptr
	for _, f := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_MANDLOCK, unix.MS_MANDLOCK},
		{unix.ST_SYNCHRONOUS, unix.MS_SYNCHRONOUS},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{stNoSymfollow, unix.MS_NOSYMFOLLOW},
	} {
		if int64(st.Flags)&f.st == f.st {
			flags |= f.ms
		}
	}
	// MS_STRICTATIME is not stored; it is what no other atime flag means.
	if flags&atimeEnumFlags == 0 {
		flags |= unix.MS_STRICTATIME
	}
	return flags
}

// mountProcSys mounts procfs or sysfs. Their destination must be a real
// directory inside the root: never a symlink, which is how CVE-2019-16884
// and CVE-2019-19921 style attacks redirect them.
func (s *setup) mountProcSys(m *mount) error {
	dest := cleanPath(m.Destination)
	if err := s.checkProcMount(filepath.Join(s.rootPath, dest), m); err != nil {
		return err
	}
	dir, base, err := mkdirParentInRoot(s.root, dest, false)
	if err != nil {
		return &mountError{op: "create mountpoint", target: m.Destination, err: err}
	}
	defer dir.Close()
	var st unix.Stat_t
	err = unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkdirat(int(dir.Fd()), base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return &mountError{op: "create mountpoint", target: m.Destination, err: err}
		}
	case err != nil:
		return &mountError{op: "stat", target: m.Destination, err: err}
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return &mountError{op: "mount", source: m.Source, target: m.Destination,
			err: fmt.Errorf("filesystem %q must be mounted on an ordinary directory", m.Type)}
	}
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &mountError{op: "open mountpoint", target: m.Destination, err: err}
	}
	dst := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), base))
	defer dst.Close()

	magic := int64(unix.PROC_SUPER_MAGIC)
	if m.Type == "sysfs" {
		magic = unix.SYSFS_MAGIC
		// sysfs may only be mounted by the owner of the network namespace:
		// in a user namespace without its own, bind the host's /sys as
		// runc's rootless spec does.
		if s.userns && !s.ownNetns {
			return s.bindSys(m, dst)
		}
	}
	mnt, err := s.mountPropagate(m, dst, m.Type, m.Flags, m.Data)
	if err != nil {
		if m.Type == "sysfs" && s.userns && errors.Is(err, unix.EPERM) {
			return s.bindSys(m, dst)
		}
		return err
	}
	if err := verifyFs(mnt, m.Destination, magic); err != nil {
		mnt.Close()
		return err
	}
	return s.finishMount(m, mnt)
}

func (s *setup) bindSys(m *mount, dst *os.File) error {
	b := *m
	b.Type, b.Source = "bind", "/sys"
	b.Flags |= unix.MS_BIND | unix.MS_REC
	if err := s.mountBind(&b, dst); err != nil {
		return err
	}
	mnt, err := s.reopenAfterMount(dst, m.Destination)
	if err != nil {
		return err
	}
	defer mnt.Close()
	return verifyFs(mnt, m.Destination, unix.SYSFS_MAGIC)
}

// checkProcMount refuses mounts over /proc or inside it (where a bind could
// hide or fake what the kernel reports), except a fresh procfs or a procfs
// bind on /proc itself, and the files lxcfs emulates. real is the resolved
// host path of the destination.
func (s *setup) checkProcMount(real string, m *mount) error {
	procDir := filepath.Join(s.rootPath, "proc")
	rel, err := filepath.Rel(procDir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	if rel == "." {
		if m.Type == "proc" {
			return nil
		}
		if m.isBind() {
			var st unix.Statfs_t
			if err := unix.Statfs(m.Source, &st); err == nil && st.Type == unix.PROC_SUPER_MAGIC {
				return nil
			}
		}
		return &mountError{op: "mount", source: m.Source, target: m.Destination,
			err: errors.New("only a procfs may be mounted on /proc")}
	}
	switch "/proc/" + rel {
	case "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
		"/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
		"/proc/sys/crypto/fips_enabled":
		return nil
	}
	return &mountError{op: "mount", source: m.Source, target: m.Destination,
		err: errors.New("mounts inside /proc are not allowed")}
}
