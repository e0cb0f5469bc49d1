package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The init runs this very binary. A process in the container could open
// /proc/<init>/exe and overwrite the runtime on the host (CVE-2019-5736), so
// the init never runs the binary from its real path: it runs it from a
// read-only overlayfs mount that exists only as a detached mount (fsmount,
// never attached anywhere), or failing that from a sealed memfd copy. The fd
// is made once per process and reused.
var self struct {
	once sync.Once
	path string
	err  error
}

// selfFdMin keeps the fd above every fd an init is given (stdio, preserved
// fds, the socket), so the child's dup2s cannot clobber it before execve.
const selfFdMin = 1000

func selfExe() (string, error) {
	self.once.Do(func() {
		fd, err := overlayExe()
		if err != nil {
			if fd, err = memfdExe(); err != nil {
				self.err = fmt.Errorf("protect runtime binary: %w", err)
				return
			}
		}
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, selfFdMin)
		unix.Close(fd)
		if err != nil {
			self.err = err
			return
		}
		self.path = "/proc/self/fd/" + strconv.Itoa(nfd)
	})
	return self.path, self.err
}

func overlayExe() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	dir, name := filepath.Split(exe)
	// overlayfs wants two lower layers for a read-only mount, and refuses
	// overlapping ones (ELOOP): the second is an empty directory of our
	// own, removed once the mount holds it.
	empty, err := os.MkdirTemp("", "railcar-exe-")
	if err != nil {
		return -1, err
	}
	defer os.Remove(empty)
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	// The binary's directory on top, so that nothing in the other layer
	// can mask it.
	if err := unix.FsconfigSetString(fsfd, "lowerdir", escapeLowerDir(dir)+":"+escapeLowerDir(empty)); err != nil {
		return -1, err
	}
	// xino is of no use here and only makes the kernel log noise when the
	// layers are on different filesystems.
	_ = unix.FsconfigSetString(fsfd, "xino", "off")
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mfd)
	return unix.Openat(mfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// escapeLowerDir escapes the separators of overlayfs' lowerdir option.
func escapeLowerDir(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, `\`, `\\`), `:`, `\:`)
}

func memfdExe() (int, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return -1, err
	}
	fd, err := unix.MemfdCreate("railcar", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, err
	}
	for off := int64(0); off < fi.Size(); {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(fi.Size()-off))
		if err != nil || n == 0 {
			unix.Close(fd)
			return -1, fmt.Errorf("copy binary: %v", err)
		}
		off += int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
