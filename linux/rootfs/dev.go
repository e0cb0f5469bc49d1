package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// device is a node to create in the container's /dev.
type device struct {
	path         string
	typ          byte // 'c', 'b' or 'p'
	major, minor int64
	mode         uint32 // permission bits
	uid, gid     uint32
}

// defaultDevices are the nodes every container gets (runc's AllowedDevices
// that have a path). A spec device with the same path replaces one.
var defaultDevices = []device{
	{path: "/dev/null", typ: 'c', major: 1, minor: 3, mode: 0o666},
	{path: "/dev/random", typ: 'c', major: 1, minor: 8, mode: 0o666},
	{path: "/dev/full", typ: 'c', major: 1, minor: 7, mode: 0o666},
	{path: "/dev/tty", typ: 'c', major: 5, minor: 0, mode: 0o666},
	{path: "/dev/zero", typ: 'c', major: 1, minor: 5, mode: 0o666},
	{path: "/dev/urandom", typ: 'c', major: 1, minor: 9, mode: 0o666},
}

// devices merges the default devices with the spec's.
func (s *setup) devices() ([]device, error) {
	var specDevs []device
	seen := map[string]bool{}
	if l := s.c.Spec.Linux; l != nil {
		for _, d := range l.Devices {
			dev := device{path: cleanPath(d.Path), major: d.Major, minor: d.Minor, mode: 0o666}
			switch d.Type {
			case "c", "u":
				dev.typ = 'c'
			case "b", "p":
				dev.typ = d.Type[0]
			default:
				return nil, fmt.Errorf("device %s: invalid type %q", d.Path, d.Type)
			}
			if d.FileMode != nil {
				// Raw mode bits in the spec, possibly with the type (runc).
				dev.mode = uint32(*d.FileMode) & 0o7777
			}
			if d.UID != nil {
				dev.uid = *d.UID
			}
			if d.GID != nil {
				dev.gid = *d.GID
			}
			seen[dev.path] = true
			specDevs = append(specDevs, dev)
		}
	}
	var out []device
	for _, d := range defaultDevices {
		if !seen[d.path] {
			out = append(out, d)
		}
	}
	return append(out, specDevs...), nil
}

// createDevices populates /dev: device nodes, /dev/ptmx and the standard
// symlinks (runc's doSetupDev).
func (s *setup) createDevices() error {
	devs, err := s.devices()
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.path == "/dev/ptmx" {
			continue // a symlink to pts/ptmx, below
		}
		if err := s.createDevice(d); err != nil {
			return fmt.Errorf("create device %s: %w", d.path, err)
		}
	}
	dev, err := mkdirAllInRoot(s.root, "/dev", 0o755)
	if err != nil {
		return fmt.Errorf("create /dev: %w", err)
	}
	defer dev.Close()
	fd := int(dev.Fd())
	if err := unix.Unlinkat(fd, "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := unix.Symlinkat("pts/ptmx", fd, "ptmx"); err != nil {
		return fmt.Errorf("symlink /dev/ptmx: %w", err)
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	// Only where the kernel has /proc/kcore (CONFIG_PROC_KCORE).
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], fd, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	runtime.KeepAlive(dev)
	return nil
}

// createDevice makes one node with mknod, or, where mknod is not permitted
// (a user namespace), bind-mounts the host's node of the same path, as
// runc does. An existing node is left as it is.
func (s *setup) createDevice(d device) error {
	dir, base, err := mkdirParentInRoot(s.root, d.path, false)
	if err != nil {
		return err
	}
	defer dir.Close()
	var mode uint32
	switch d.typ {
	case 'c':
		mode = unix.S_IFCHR
	case 'b':
		mode = unix.S_IFBLK
	case 'p':
		mode = unix.S_IFIFO
	}
	rdev := unix.Mkdev(uint32(d.major), uint32(d.minor))
	err = unix.Mknodat(int(dir.Fd()), base, mode|d.mode, int(rdev))
	switch {
	case errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.EPERM):
		return bindDevice(dir, base, d)
	case err != nil:
		return err
	}
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	node := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), base))
	defer node.Close()
	// Check what we operate on before chmod and chown through it.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != mode || (d.typ != 'p' && st.Rdev != rdev) {
		return fmt.Errorf("new node is %#o %d:%d, not the device made", st.Mode&unix.S_IFMT,
			unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	// mknod applied the umask; set the mode asked for.
	if err := unix.Chmod(procFd(node), d.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.Chown(procFd(node), int(d.uid), int(d.gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

func bindDevice(dir *os.File, base string, d device) error {
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("create bind target: %w", err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), base))
	defer f.Close()
	return sysMount(d.path, f, "", d.path, "bind", unix.MS_BIND, "")
}
