package rootfs

import (
	"errors"
	"fmt"
	"os"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// finalize runs in the new root (runc's finalizeRootfs plus its readonly
// and masked paths). Nothing here names a path under the container's /proc:
// the container's procfs and sysfs may be what the image says they are, so
// mounts are made and changed through fds (open_tree, fsopen, move_mount,
// mount_setattr).
func (s *setup) finalize() error {
	if s.setupDev {
		if err := reopenDevNull(); err != nil {
			return err
		}
	}
	if s.c.BeforeReadonly != nil {
		if err := s.c.BeforeReadonly(); err != nil {
			return err
		}
	}
	for _, r := range s.readonlyLater {
		if err := setReadonly(r.f, r.name); err != nil {
			return err
		}
	}
	spec := s.c.Spec
	if spec.Root != nil && spec.Root.Readonly {
		if err := readonlyRoot(); err != nil {
			return err
		}
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer root.Close()
	if spec.Linux != nil {
		for _, p := range spec.Linux.ReadonlyPaths {
			if err := readonlyPath(root, p); err != nil {
				return err
			}
		}
		if err := s.maskPaths(root, spec.Linux.MaskedPaths); err != nil {
			return err
		}
	}
	umask := 0o022
	if spec.Process != nil && spec.Process.User.Umask != nil {
		umask = int(*spec.Process.User.Umask)
	}
	unix.Umask(umask)
	return unix.Chdir("/")
}

// setReadonly makes the mount whose root f is read-only, leaving its other
// flags. EBUSY (a file still open for writing) is retried, as runc does.
func setReadonly(f *os.File, name string) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	var err error
	for range 5 {
		err = ignoringEINTR(func() error { return unix.MountSetattr(int(f.Fd()), "", unix.AT_EMPTY_PATH, attr) })
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return &mountError{op: "make read-only", target: name, err: err}
	}
	return nil
}

// readonlyRoot remounts / read-only, keeping nosuid, nodev, noexec and
// nosymfollow: a bind remount sets exactly the flags given, and in a user
// namespace they may be locked.
func readonlyRoot() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return fmt.Errorf("statfs /: %w", err)
	}
	keep := statfsToMountFlags(st) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOSYMFOLLOW)
	return sysMount("", nil, "/", "/", "", keep|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

// readonlyPath binds path onto itself and makes that bind read-only; a
// missing path is skipped.
func readonlyPath(root *os.File, path string) error {
	dst, err := openInRoot(root, path, unix.O_PATH)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return &mountError{op: "make read-only", target: path, err: err}
	}
	defer dst.Close()
	tree, err := openTree(dst, unix.AT_RECURSIVE)
	if err != nil {
		return &mountError{op: "make read-only", target: path, err: err}
	}
	defer tree.Close()
	if err := setReadonly(tree, path); err != nil {
		return err
	}
	if err := moveMount(tree, dst); err != nil {
		return &mountError{op: "make read-only", target: path, err: err}
	}
	return nil
}

// maskPaths hides each path: /dev/null over files, an empty read-only
// tmpfs over directories; missing paths are skipped. /dev/null must really
// be the null device (CVE-2025-31133: an image could make it a symlink to,
// say, /proc/sys/kernel/core_pattern, and masking would expose that).
func (s *setup) maskPaths(root *os.File, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	null, err := openInRoot(root, "/dev/null", unix.O_PATH)
	if err != nil {
		return fmt.Errorf("mask paths: %w", err)
	}
	defer null.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(null.Fd()), &st); err != nil {
		return fmt.Errorf("mask paths: fstat /dev/null: %w", err)
	}
	if !isDevNull(&st) {
		return errors.New("mask paths: the container's /dev/null is not the null device")
	}
	done := map[string]bool{}
	for _, p := range paths {
		if done[cleanPath(p)] {
			continue
		}
		done[cleanPath(p)] = true
		if err := s.maskPath(root, null, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *setup) maskPath(root, null *os.File, path string) error {
	dst, err := openInRoot(root, path, unix.O_PATH)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return &mountError{op: "mask", target: path, err: err}
	}
	defer dst.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(dst.Fd()), &st); err != nil {
		return &mountError{op: "mask", target: path, err: err}
	}
	var mnt *os.File
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		mnt, err = s.maskTmpfs()
	} else {
		mnt, err = openTree(null, 0)
	}
	if err != nil {
		return &mountError{op: "mask", target: path, err: err}
	}
	defer mnt.Close()
	if err := moveMount(mnt, dst); err != nil {
		return &mountError{op: "mask", target: path, err: err}
	}
	return nil
}

// maskTmpfs makes a detached, empty, read-only tmpfs that holds nothing.
func (s *setup) maskTmpfs() (*os.File, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	opts := [][2]string{{"nr_blocks", "1"}, {"nr_inodes", "1"}}
	if s.mountLabel != "" {
		opts = append(opts, [2]string{"context", s.mountLabel})
	}
	for _, o := range opts {
		if err := unix.FsconfigSetString(fsfd, o[0], o[1]); err != nil {
			return nil, fmt.Errorf("fsconfig tmpfs %s=%s: %w", o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		// Ubuntu's 5.4 kernel rejects nr_inodes=1 (runc notes), and some
		// kernels count the root inode; retry with 2.
		if err2 := unix.FsconfigSetString(fsfd, "nr_inodes", "2"); err2 != nil || unix.FsconfigCreate(fsfd) != nil {
			return nil, fmt.Errorf("create tmpfs: %w", err)
		}
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return os.NewFile(uintptr(mfd), "tmpfs"), nil
}

// openTree clones the mount at f (f may be a file) into a detached tree.
func openTree(f *os.File, flags uint) (*os.File, error) {
	fd, err := unix.OpenTree(int(f.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|flags)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// moveMount attaches the detached mount tree onto the inode of dst.
func moveMount(tree, dst *os.File) error {
	err := ignoringEINTR(func() error {
		return unix.MoveMount(int(tree.Fd()), "", int(dst.Fd()), "",
			unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	})
	if err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// reopenDevNull points stdio that is the runtime's /dev/null at the
// container's /dev/null instead, once it is checked to be the null device.
func reopenDevNull() error {
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer root.Close()
	h, err := openInRoot(root, "/dev/null", unix.O_PATH)
	if err != nil {
		return fmt.Errorf("open container /dev/null: %w", err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return fmt.Errorf("fstat container /dev/null: %w", err)
	}
	// Check before opening it for writing: it could be anything.
	if !isDevNull(&st) {
		return errors.New("the container's /dev/null is not the null device")
	}
	f, err := retryEAGAIN(func() (*os.File, error) { return pathrs.Reopen(h, unix.O_RDWR|unix.O_CLOEXEC) })
	if err != nil {
		return fmt.Errorf("open container /dev/null: %w", err)
	}
	defer f.Close()
	for fd := range 3 {
		var s unix.Stat_t
		if err := unix.Fstat(fd, &s); err != nil {
			continue // a closed stdio fd is not ours to fix
		}
		if isDevNull(&s) {
			if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
				return fmt.Errorf("dup /dev/null to fd %d: %w", fd, err)
			}
		}
	}
	return nil
}

// BindConsole bind-mounts the pty slave (a path as the container sees it,
// e.g. /dev/pts/0) onto /dev/console, creating the file if needed. It runs
// in the container after Setup (or from Config.BeforeReadonly), and uses
// fd-based mounts, so the container's /proc is not involved.
func BindConsole(slave string) error {
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bind console: %w", err)
	}
	defer root.Close()
	pty, err := openInRoot(root, slave, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("bind console: open %s: %w", slave, err)
	}
	defer pty.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(pty.Fd()), &st); err != nil {
		return fmt.Errorf("bind console: fstat %s: %w", slave, err)
	}
	// Unix98 pty slaves have majors 136 to 143.
	if maj := unix.Major(st.Rdev); st.Mode&unix.S_IFMT != unix.S_IFCHR || maj < 136 || maj > 143 {
		return fmt.Errorf("bind console: %s is not a pty slave", slave)
	}
	dev, err := openInRoot(root, "/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("bind console: open /dev: %w", err)
	}
	defer dev.Close()
	fd, err := unix.Openat(int(dev.Fd()), "console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		var cfd int
		cfd, err = unix.Openat(int(dev.Fd()), "console", unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o666)
		if err == nil {
			fd = cfd
		}
	}
	if err != nil {
		return fmt.Errorf("bind console: create /dev/console: %w", err)
	}
	console := os.NewFile(uintptr(fd), "/dev/console")
	defer console.Close()
	var cst unix.Stat_t
	if err := unix.Fstat(fd, &cst); err != nil {
		return fmt.Errorf("bind console: fstat /dev/console: %w", err)
	}
	if cst.Mode&unix.S_IFMT == unix.S_IFLNK || cst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return errors.New("bind console: /dev/console is not a file")
	}
	tree, err := openTree(pty, 0)
	if err != nil {
		return &mountError{op: "mount", source: slave, target: "/dev/console", err: err}
	}
	defer tree.Close()
	if err := moveMount(tree, console); err != nil {
		return &mountError{op: "mount", source: slave, target: "/dev/console", err: err}
	}
	return nil
}
