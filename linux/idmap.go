package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// EnvHold makes a re-executed railcar sleep before its Go runtime starts
// (package nsenter): a holder that keeps a user namespace with given
// mappings alive long enough to open it.
const EnvHold = "_RAILCAR_HOLD"

func isIDMapped(m specs.Mount) bool {
	return len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 ||
		slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap")
}

func isBindMount(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// idmappedMounts makes a detached id-mapped copy of the source of every
// id-mapped mount of s, keyed by its index in s.Mounts. usernsPid is a
// process in the container's new user namespace; mounts with mappings of
// their own get a user namespace of their own.
//
// In a container with a user namespace (new or joined) it also makes a
// plain detached copy of the source of every other bind mount: the
// container's root may not be able to reach the source (containerd's
// /dev/shm of a pod lives under its 0700 state directory), while the
// parent, with the host's privileges, can; runc opens these sources
// outside the user namespace too (goCreateMountSources). A source the
// parent cannot open is left to the init, which reports it as for any
// bind mount.
func (e *Engine) idmappedMounts(s *specs.Spec, bundle string, usernsPid int) (map[int]*os.File, error) {
	out := map[int]*os.File{}
	fail := func(err error) (map[int]*os.File, error) {
		closeAll(out)
		return nil, err
	}
	var containerNS *os.File
	defer func() {
		if containerNS != nil {
			containerNS.Close()
		}
	}()
	userns := false
	for _, ns := range s.Linux.Namespaces {
		userns = userns || ns.Type == specs.UserNamespace
	}
	for i, m := range s.Mounts {
		if !isIDMapped(m) {
			if userns && isBindMount(m) {
				if tree, err := idmapTree(m, bundle, nil); err == nil {
					out[i] = tree
				}
			}
			continue
		}
		if !isBindMount(m) {
			return fail(fmt.Errorf("mount %s: id-mapped mounts must be bind mounts", m.Destination))
		}
		var ns *os.File
		var err error
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			ns, err = e.userns(m.UIDMappings, m.GIDMappings)
			if err != nil {
				return fail(fmt.Errorf("mount %s: %w", m.Destination, err))
			}
		} else {
			if usernsPid == 0 {
				return fail(fmt.Errorf("mount %s: idmap without mappings needs a new user namespace", m.Destination))
			}
			if containerNS == nil {
				if containerNS, err = os.Open("/proc/" + strconv.Itoa(usernsPid) + "/ns/user"); err != nil {
					return fail(err)
				}
			}
			ns = containerNS
		}
		tree, err := idmapTree(m, bundle, ns)
		if ns != containerNS {
			ns.Close()
		}
		if err != nil {
			return fail(fmt.Errorf("mount %s: %w", m.Destination, err))
		}
		out[i] = tree
	}
	return out, nil
}

// idmapTree makes a detached copy of the source of bind mount m, recursive
// for rbind, and id-maps it to user namespace ns unless ns is nil.
func idmapTree(m specs.Mount, bundle string, ns *os.File) (*os.File, error) {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(bundle, src)
	}
	rec := slices.Contains(m.Options, "rbind") || slices.Contains(m.Options, "ridmap")
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if rec {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", src, err)
	}
	if ns == nil {
		return os.NewFile(uintptr(fd), m.Destination), nil
	}
	at := unix.AT_EMPTY_PATH
	if slices.Contains(m.Options, "ridmap") {
		at |= unix.AT_RECURSIVE
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", uint(at), attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("id-map %s: %w", src, err)
	}
	return os.NewFile(uintptr(fd), m.Destination), nil
}

// userns returns a user namespace with the given mappings, made by a
// short-lived holder process.
func (e *Engine) userns(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	self, err := selfExe()
	if err != nil {
		return nil, err
	}
	conv := func(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		var out []syscall.SysProcIDMap
		for _, m := range ms {
			out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		return out
	}
	cmd := &exec.Cmd{Path: self, Args: []string{"railcar-userns"}, Env: []string{EnvHold + "=1"},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
			UidMappings: conv(uids), GidMappings: conv(gids), Pdeathsig: syscall.SIGKILL}}
	ch, err := e.monitor.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("user namespace holder: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		e.monitor.Wait(cmd, ch)
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if err != nil {
		return nil, err
	}
	return f, nil
}

func closeAll(m map[int]*os.File) {
	for _, f := range m {
		f.Close()
	}
}
