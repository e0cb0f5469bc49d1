package rootfs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The root tests run Setup for real in a child: the test binary re-executed
// into new mount and pid namespaces (and a user namespace for some), which
// runs Setup, probes the result from inside the new root and prints a
// report as JSON. Go cannot unshare a mount namespace for the whole process
// once threads exist, hence the re-exec.

const helperEnv = "RAILCAR_ROOTFS_TEST_HELPER"

// helperInput is what the parent asks of the child.
type helperInput struct {
	Spec    *specs.Spec
	Rootfs  string
	NoPivot bool
	Console bool     // open a pty in the container and BindConsole it
	Cgroup  bool     // a new cgroup namespace too
	Nest    bool     // after Before, run Setup in a nested mount namespace
	Unified bool     // take the cgroup2 path whatever the host has
	Before  []string // setup in the child before Setup: "tmpfs DIR", "rshared /", "bind SRC DST"
	Stat    []string // lstat these
	Read    []string // read these (first 64 bytes)
	Write   []string // create or truncate these
}

type statResult struct {
	Err    string
	Type   string // dir, file, link, char, block, fifo, other
	Perm   uint32
	Major  uint32
	Minor  uint32
	Link   string
	UID    uint32
	Fstype int64
}

type report struct {
	SetupErr string
	Mounts   []*mountinfo.Info
	Stat     map[string]statResult
	Read     map[string]string // content, or "error: ..."
	Write    map[string]string // "" or the error
	Cwd      string
	Console  string // "" when ok, else the error
	Umask    int
}

// TestHelperSetup is the child. It does nothing in a normal run.
func TestHelperSetup(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	err := helperMain(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

func helperMain(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var in helperInput
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	for _, b := range in.Before {
		f := strings.Fields(b)
		if len(f) == 2 && f[0] == "tmpfs" {
			if err := unix.Mount("tmpfs", f[1], "tmpfs", 0, ""); err != nil {
				return fmt.Errorf("before: %s: %w", b, err)
			}
		}
		if len(f) == 3 && f[0] == "bind" {
			if err := unix.Mount(f[1], f[2], "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("before: %s: %w", b, err)
			}
		}
		if len(f) == 2 && f[0] == "rshared" {
			if err := unix.Mount("", f[1], "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("before: %s: %w", b, err)
			}
		}
	}
	if in.Nest {
		// The nested namespace's mounts are peers of this one's shared
		// mounts, as a container's are of a systemd host's.
		in.Nest, in.Before = false, nil
		return runNested(&in)
	}
	if in.Unified {
		cgroupMode = func() cgroups.CGMode { return cgroups.Unified }
	}
	var r report
	cfg := &Config{Spec: in.Spec, Rootfs: in.Rootfs, NoPivot: in.NoPivot}
	if in.Console {
		cfg.BeforeReadonly = func() error {
			r.Console = consoleProbe()
			return nil
		}
	}
	if err := Setup(cfg); err != nil {
		r.SetupErr = err.Error()
		return json.NewEncoder(os.Stdout).Encode(&r)
	}
	r.Cwd, _ = os.Getwd()
	r.Umask = unix.Umask(0)
	r.Mounts, _ = mountinfo.GetMounts(nil)
	r.Stat = map[string]statResult{}
	for _, p := range in.Stat {
		r.Stat[p] = statPath(p)
	}
	r.Read = map[string]string{}
	for _, p := range in.Read {
		f, err := os.Open(p)
		if err != nil {
			r.Read[p] = "error: " + err.Error()
			continue
		}
		b := make([]byte, 64)
		n, err := f.Read(b)
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			r.Read[p] = "error: " + err.Error()
			continue
		}
		r.Read[p] = string(b[:n])
	}
	r.Write = map[string]string{}
	for _, p := range in.Write {
		r.Write[p] = ""
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			r.Write[p] = err.Error()
		}
	}
	return json.NewEncoder(os.Stdout).Encode(&r)
}

func runNested(in *helperInput) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	path := os.Getenv(helperEnv) + ".nested"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperSetup$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func statPath(p string) statResult {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return statResult{Err: err.Error()}
	}
	r := statResult{Perm: st.Mode & 0o7777, Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev), UID: st.Uid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		r.Type = "dir"
	case unix.S_IFREG:
		r.Type = "file"
	case unix.S_IFLNK:
		r.Type = "link"
		r.Link, _ = os.Readlink(p)
	case unix.S_IFCHR:
		r.Type = "char"
	case unix.S_IFBLK:
		r.Type = "block"
	case unix.S_IFIFO:
		r.Type = "fifo"
	default:
		r.Type = "other"
	}
	var sfs unix.Statfs_t
	if r.Type != "link" && unix.Statfs(p, &sfs) == nil {
		r.Fstype = int64(sfs.Type)
	}
	return r
}

// consoleProbe opens a pty through the container's /dev/ptmx and binds its
// slave onto /dev/console; "" means the console is that slave.
func consoleProbe() string {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err.Error()
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		return err.Error()
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return err.Error()
	}
	slave := fmt.Sprintf("/dev/pts/%d", n)
	if err := BindConsole(slave); err != nil {
		return err.Error()
	}
	var a, b unix.Stat_t
	if err := unix.Stat(slave, &a); err != nil {
		return err.Error()
	}
	if err := unix.Stat("/dev/console", &b); err != nil {
		return err.Error()
	}
	if a.Rdev != b.Rdev || b.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Sprintf("/dev/console is %d:%d, slave is %d:%d",
			unix.Major(b.Rdev), unix.Minor(b.Rdev), unix.Major(a.Rdev), unix.Minor(a.Rdev))
	}
	// Keep the master open until the probe is done.
	ptmx.Close()
	return ""
}

// runHelper runs Setup in a child with new mount and pid namespaces (and a
// user namespace mapping container root to host uid 100000 when userns).
func runHelper(t *testing.T, in helperInput, userns bool) *report {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// /proc/self/exe: a magic link reaches the binary without searching the
	// go build directory, which a shifted root may not.
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperSetup$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
	}
	if in.Cgroup {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWCGROUP
	}
	if userns {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: usernsBase, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: usernsBase, Size: 65536}}
		// Become the namespace's root: host root is unmapped in it, and an
		// unmapped euid loses every capability at execve.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("helper report: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return &r
}

const usernsBase = 100000

// makeRootfs builds a minimal root filesystem: busybox and the usual
// top-level directories. With owner != 0 everything is chowned to it.
func makeRootfs(t *testing.T, owner int) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir and its parent are 0700: let a shifted root reach it.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "var/log", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("rootfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if owner != 0 {
		err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, owner, owner)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: mounts and namespaces")
	}
}

// findMount returns the last (topmost) mount at mountpoint.
func findMount(r *report, mountpoint string) *mountinfo.Info {
	var found *mountinfo.Info
	for _, m := range r.Mounts {
		if m.Mountpoint == mountpoint {
			found = m
		}
	}
	return found
}

func hasOpt(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// wantMount checks the topmost mount at mountpoint has fstype and the
// per-mount options opts.
func wantMount(t *testing.T, r *report, mountpoint, fstype string, opts ...string) *mountinfo.Info {
	t.Helper()
	m := findMount(r, mountpoint)
	if m == nil {
		t.Errorf("no mount at %s", mountpoint)
		return nil
	}
	if fstype != "" && m.FSType != fstype {
		t.Errorf("mount at %s: got fstype %s, want %s", mountpoint, m.FSType, fstype)
	}
	for _, o := range opts {
		if !hasOpt(m.Options, o) {
			t.Errorf("mount at %s: options %s, want %s", mountpoint, m.Options, o)
		}
	}
	return m
}
