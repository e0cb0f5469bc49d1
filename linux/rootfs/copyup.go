package rootfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// reopenDir opens the directory behind an O_PATH handle for reading.
func reopenDir(h *os.File) (*os.File, error) {
	return retryEAGAIN(func() (*os.File, error) {
		return pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	})
}

// copyUp copies the tree under the directory src (now covered by a fresh
// tmpfs) into the tmpfs whose root is mnt: "tmpcopyup". Everything goes
// through directory fds with O_NOFOLLOW, so no path in the container can
// redirect it.
func copyUp(src, mnt *os.File) error {
	dst, err := reopenDir(mnt)
	if err != nil {
		return err
	}
	defer dst.Close()
	return copyDir(src, dst)
}

func copyDir(src, dst *os.File) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", src.Name(), err)
	}
	for _, name := range names {
		if err := copyEntry(src, dst, name); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(src, dst *os.File, name string) error {
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", filepath.Join(src.Name(), name), err)
	}
	perm := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", name, err)
		}
		s, err := openAt(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer s.Close()
		d, err := openAt(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := copyDir(s, d); err != nil {
			return err
		}
	case unix.S_IFREG:
		s, err := openAt(src, name, unix.O_RDONLY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer s.Close()
		d, err := openAt(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer d.Close()
		if _, err := io.Copy(d, s); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(sfd, name, buf)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", name, err)
		}
		if err := unix.Symlinkat(string(buf[:n]), dfd, name); err != nil {
			return fmt.Errorf("symlink %s: %w", name, err)
		}
	default:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", name, err)
		}
	}
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// Not a symlink, so following is harmless: fchmodat(2) has no NOFOLLOW.
		if err := unix.Fchmodat(dfd, name, perm, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	return nil
}

func openAt(dir *os.File, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, flags|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir.Name(), name), err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}
