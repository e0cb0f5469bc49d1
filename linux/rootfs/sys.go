package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	"golang.org/x/sys/unix"
)

// mountError is the one-line error of a failed mount operation, naming the
// container path: `mount "proc" on /proc: permission denied`.
type mountError struct {
	op     string // mount, remount, bind, ...
	source string // may be empty
	target string // the destination as the container sees it
	err    error
}

func (e *mountError) Error() string {
	if e.source == "" {
		return fmt.Sprintf("%s %s: %v", e.op, e.target, e.err)
	}
	return fmt.Sprintf("%s %q on %s: %v", e.op, e.source, e.target, e.err)
}

func (e *mountError) Unwrap() error { return e.err }

// procFd is the magic link of f in the runtime's own /proc. Mounting onto
// it mounts onto exactly the inode f resolved to, so a symlink the
// container swaps in afterwards cannot redirect the mount (CVE-2021-30465).
// It is used only before pivot_root, while /proc is still the runtime's
// procfs (checked by checkHostProc), never the container's.
func procFd(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

// checkHostProc verifies that /proc, through which every mount target is
// named before pivot_root, is the root of a procfs.
func checkHostProc() error {
	f, err := os.OpenFile("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyFs(f, "/proc", unix.PROC_SUPER_MAGIC)
}

// verifyFs checks that f is the root (for procfs, whose root inode is 1) of
// a filesystem of type magic.
func verifyFs(f *os.File, name string, magic int64) error {
	var st unix.Statfs_t
	if err := fstatfs(f, &st); err != nil {
		return fmt.Errorf("fstatfs %s: %w", name, err)
	}
	if int64(st.Type) != magic {
		return fmt.Errorf("%s is not a %s (filesystem type %#x)", name, fsName(magic), st.Type)
	}
	if magic == unix.PROC_SUPER_MAGIC {
		var s unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &s); err != nil {
			return fmt.Errorf("fstat %s: %w", name, err)
		}
		if s.Ino != 1 {
			return fmt.Errorf("%s is not the root of a procfs (inode %d)", name, s.Ino)
		}
	}
	return nil
}

func fsName(magic int64) string {
	switch magic {
	case unix.PROC_SUPER_MAGIC:
		return "procfs"
	case unix.SYSFS_MAGIC:
		return "sysfs"
	}
	return fmt.Sprintf("filesystem %#x", magic)
}

func fstatfs(f *os.File, st *unix.Statfs_t) error {
	err := ignoringEINTR(func() error { return unix.Fstatfs(int(f.Fd()), st) })
	runtime.KeepAlive(f)
	return err
}

// ignoringEINTR retries fn while it fails with EINTR, which Go's
// preemption signal can cause in any slow syscall.
func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// retryEAGAIN retries pathrs-lite calls, which return EAGAIN when a
// concurrent rename raced an openat2 lookup (runc's internal/pathrs).
func retryEAGAIN[T any](fn func() (T, error)) (T, error) {
	deadline := time.Now().Add(2 * time.Millisecond)
	for {
		v, err := fn()
		if !errors.Is(err, unix.EAGAIN) || time.Now().After(deadline) {
			return v, err
		}
	}
}

// sysMount is mount(2) through the magic link of dst, or onto target itself
// when dst is nil; name is the container path for the error.
func sysMount(source string, dst *os.File, target, name, fstype string, flags uintptr, data string) error {
	if dst != nil {
		target = procFd(dst)
	}
	err := ignoringEINTR(func() error { return unix.Mount(source, target, fstype, flags, data) })
	runtime.KeepAlive(dst)
	if err != nil {
		op := "mount"
		if flags&unix.MS_REMOUNT != 0 {
			op = "remount"
		} else if flags&(unix.MS_SHARED|unix.MS_SLAVE|unix.MS_PRIVATE|unix.MS_UNBINDABLE) != 0 {
			op, source = "set propagation of", ""
		} else if flags&unix.MS_MOVE != 0 {
			op = "move mount"
		}
		return &mountError{op: op, source: source, target: name, err: err}
	}
	return nil
}

// openInRoot resolves path inside root (symlinks and ".." cannot leave it)
// and opens it with flags (O_PATH gives the handle itself).
func openInRoot(root *os.File, path string, flags int) (*os.File, error) {
	h, err := retryEAGAIN(func() (*os.File, error) { return pathrs.OpenatInRoot(root, path) })
	if err != nil {
		return nil, err
	}
	if flags&unix.O_PATH != 0 {
		return h, nil
	}
	defer h.Close()
	return retryEAGAIN(func() (*os.File, error) { return pathrs.Reopen(h, flags) })
}

// mkdirAllInRoot creates path and its parents inside root and returns an
// O_PATH handle to it. Dangling symlinks in path are resolved in the root
// first (as runc does), since pathrs-lite refuses them.
func mkdirAllInRoot(root *os.File, path string, mode os.FileMode) (*os.File, error) {
	p, err := hallucinate(root, path)
	if err != nil {
		return nil, err
	}
	return retryEAGAIN(func() (*os.File, error) { return pathrs.MkdirAllHandle(root, p, mode) })
}

// mkdirParentInRoot creates the parent of path inside root and returns a
// handle to it and the last component, for callers that create the last
// component themselves with O_NOFOLLOW/AT_SYMLINK_NOFOLLOW semantics. With
// followLast, a symlink (even dangling) as the last component is resolved
// in the root first, as runc does for mountpoints (an image's dangling
// /etc/resolv.conf symlink, say); without, the last component is taken
// literally, for inodes that must never be reached through a symlink.
func mkdirParentInRoot(root *os.File, path string, followLast bool) (*os.File, string, error) {
	p := cleanPath(path)
	if followLast {
		var err error
		if p, err = hallucinate(root, p); err != nil {
			return nil, "", err
		}
	}
	dir, base := filepath.Split(p)
	if base == "" {
		return nil, "", fmt.Errorf("%s: no last path component", path)
	}
	d, err := mkdirAllInRoot(root, dir, 0o755)
	return d, base, err
}

// hallucinate resolves the symlinks of path inside root lexically,
// dangling ones included, and returns the result relative to root. The
// result is a candidate only: it must still be walked with pathrs-lite.
func hallucinate(root *os.File, path string) (string, error) {
	joined, err := securejoin.SecureJoin(root.Name(), cleanPath(path))
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root.Name(), joined)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s resolves outside the root", path)
	}
	return cleanPath(rel), nil
}

// realPath is the host path f refers to, read from /proc/self/fd safely.
func realPath(f *os.File) (string, error) {
	return procfs.ProcSelfFdReadlink(f)
}

// inRoot reports whether path is root or below it, lexically.
func inRoot(root, path string) bool {
	root = strings.TrimRight(root, "/")
	return path == root || strings.HasPrefix(path, root+"/") || root == ""
}
