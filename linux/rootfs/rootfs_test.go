package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultSpec is the mount, mask and read-only set of `runc spec`, plus a
// read-only bind of a host directory and file.
func defaultSpec(hostDir, hostFile string) *specs.Spec {
	mode := os.FileMode(0o640)
	uid, gid := uint32(7), uint32(8)
	return &specs.Spec{
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}},
			{Destination: "/data/ro", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
			{Destination: "/etc/hostfile", Type: "bind", Source: hostFile, Options: []string{"bind", "ro"}},
			{Destination: "/run/ro-tmpfs", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "mode=700"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}},
			Devices: []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid, GID: &gid},
				{Path: "/dev/sub/pipe", Type: "p"},
			},
			MaskedPaths: []string{
				"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/scsi", "/sys/firmware",
				"/proc/does-not-exist",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", "/not/there",
			},
		},
	}
}

func hostBindSources(t *testing.T) (string, string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func TestSetupDefaultSpec(t *testing.T) {
	requireRoot(t)
	hostDir, hostFile := hostBindSources(t)
	root := makeRootfs(t, 0)
	r := runHelper(t, helperInput{
		Spec:    defaultSpec(hostDir, hostFile),
		Rootfs:  root,
		Console: true,
		Stat: []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
			"/dev/fuse", "/dev/sub/pipe", "/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr",
			"/proc", "/sys", "/etc/hostfile", "/run/ro-tmpfs", "/proc/keys"},
		Read:  []string{"/data/ro/hello", "/etc/hostfile", "/proc/keys", "/etc/hostname"},
		Write: []string{"/newfile", "/tmp/ok", "/data/ro/new", "/proc/sys/kernel/domainname", "/run/ro-tmpfs/x", "/dev/shm/ok"},
	}, false)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	if r.Cwd != "/" {
		t.Errorf("cwd: got %q, want /", r.Cwd)
	}
	if r.Umask != 0o022 {
		t.Errorf("umask: got %#o, want 022", r.Umask)
	}

	// Mounts and their flags.
	wantMount(t, r, "/", "", "ro")
	wantMount(t, r, "/proc", "proc", "rw")
	wantMount(t, r, "/dev", "tmpfs", "rw", "nosuid")
	wantMount(t, r, "/dev/pts", "devpts", "nosuid", "noexec")
	wantMount(t, r, "/dev/shm", "tmpfs", "nosuid", "noexec", "nodev")
	wantMount(t, r, "/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev")
	wantMount(t, r, "/sys", "sysfs", "ro", "nosuid", "noexec", "nodev")
	wantMount(t, r, "/sys/fs/cgroup", "tmpfs", "ro", "nosuid", "noexec", "nodev")
	wantMount(t, r, "/sys/fs/cgroup/memory", "cgroup", "ro", "nosuid", "noexec", "nodev")
	wantMount(t, r, "/sys/fs/cgroup/pids", "cgroup", "ro")
	wantMount(t, r, "/tmp", "tmpfs", "rw", "nosuid", "nodev")
	wantMount(t, r, "/data/ro", "", "ro", "nosuid")
	if m := findMount(r, "/data/ro"); m != nil && strings.Contains(m.Optional, "shared") {
		t.Errorf("/data/ro: rprivate mount is %q", m.Optional)
	}
	wantMount(t, r, "/etc/hostfile", "", "ro")
	wantMount(t, r, "/run/ro-tmpfs", "tmpfs", "ro")
	if m := findMount(r, "/run/ro-tmpfs"); m != nil && !hasOpt(m.VFSOptions, "mode=700") {
		t.Errorf("/run/ro-tmpfs: super options %q, want mode=700", m.VFSOptions)
	}
	if m := findMount(r, "/dev/pts"); m != nil && !hasOpt(m.VFSOptions, "ptmxmode=666") {
		t.Errorf("/dev/pts: super options %q, want ptmxmode=666", m.VFSOptions)
	}

	// Masked and read-only paths. Missing ones are skipped, not created;
	// which exist depends on the kernel's configuration.
	for _, p := range []string{"/proc/kcore", "/proc/scsi", "/proc/sysrq-trigger"} {
		_, err := os.Stat(p)
		if m := findMount(r, p); (err == nil) != (m != nil) {
			t.Errorf("%s: exists on the host: %v, mounted in the container: %v", p, err == nil, m != nil)
		}
	}
	// Files are masked with the container's /dev/null, on its /dev tmpfs.
	wantMount(t, r, "/proc/keys", "tmpfs")
	wantMount(t, r, "/proc/timer_list", "tmpfs")
	if st := r.Stat["/proc/keys"]; st.Type != "char" || st.Major != 1 || st.Minor != 3 {
		t.Errorf("masked /proc/keys: got %+v, want the null device", st)
	}
	wantMount(t, r, "/proc/sys", "proc", "ro")
	wantMount(t, r, "/proc/irq", "proc", "ro")
	wantMount(t, r, "/sys/firmware", "tmpfs", "ro")
	if got := r.Read["/proc/keys"]; got != "" {
		t.Errorf("masked /proc/keys reads %q, want nothing", got)
	}
	if findMount(r, "/proc/does-not-exist") != nil || findMount(r, "/not/there") != nil {
		t.Errorf("missing masked or read-only paths were created")
	}

	// Writes.
	for p, want := range map[string]string{
		"/newfile":                    "read-only file system",
		"/data/ro/new":                "read-only file system",
		"/proc/sys/kernel/domainname": "read-only file system",
		"/run/ro-tmpfs/x":             "read-only file system",
		"/tmp/ok":                     "",
		"/dev/shm/ok":                 "",
	} {
		got := r.Write[p]
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("write %s: got %q, want %q", p, got, want)
		}
	}
	if got := r.Read["/data/ro/hello"]; got != "from host" {
		t.Errorf("/data/ro/hello: got %q", got)
	}
	if got := r.Read["/etc/hostfile"]; got != "host file" {
		t.Errorf("/etc/hostfile: got %q", got)
	}

	// Devices.
	for p, want := range map[string][3]uint32{
		"/dev/null": {1, 3, 0o666}, "/dev/zero": {1, 5, 0o666}, "/dev/full": {1, 7, 0o666},
		"/dev/random": {1, 8, 0o666}, "/dev/urandom": {1, 9, 0o666}, "/dev/tty": {5, 0, 0o666},
		"/dev/fuse": {10, 229, 0o640},
	} {
		st := r.Stat[p]
		if st.Type != "char" || st.Major != want[0] || st.Minor != want[1] || st.Perm != want[2] {
			t.Errorf("%s: got %+v, want char %d:%d mode %#o", p, st, want[0], want[1], want[2])
		}
	}
	if st := r.Stat["/dev/fuse"]; st.UID != 7 {
		t.Errorf("/dev/fuse: uid %d, want 7", st.UID)
	}
	if st := r.Stat["/dev/sub/pipe"]; st.Type != "fifo" {
		t.Errorf("/dev/sub/pipe: got %+v, want a fifo", st)
	}
	for p, want := range map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if st := r.Stat[p]; st.Type != "link" || st.Link != want {
			t.Errorf("%s: got %+v, want a symlink to %s", p, st, want)
		}
	}
	if st := r.Stat["/proc"]; st.Fstype != unix.PROC_SUPER_MAGIC {
		t.Errorf("/proc: fstype %#x", st.Fstype)
	}
	if st := r.Stat["/sys"]; st.Fstype != unix.SYSFS_MAGIC {
		t.Errorf("/sys: fstype %#x", st.Fstype)
	}
	if st := r.Stat["/run/ro-tmpfs"]; st.Perm != 0o700 {
		t.Errorf("/run/ro-tmpfs: mode %#o, want 0700", st.Perm)
	}
	if r.Console != "" {
		t.Errorf("console: %s", r.Console)
	}
	wantMount(t, r, "/dev/console", "devpts")

	// Nothing of the host is left: no mount outside what the spec asked.
	for _, m := range r.Mounts {
		if m.Mountpoint == "/sys/fs/cgroup/unified" || strings.HasPrefix(m.Mountpoint, "/mnt") ||
			strings.HasPrefix(m.Mountpoint, hostDir) {
			t.Errorf("host mount visible in the container: %s", m.Mountpoint)
		}
	}
}

func TestSetupNoPivot(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, 0)
	spec := &specs.Spec{
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		},
		Linux: &specs.Linux{MaskedPaths: []string{"/proc/keys"}},
	}
	r := runHelper(t, helperInput{
		Spec: spec, Rootfs: root, NoPivot: true,
		Stat:  []string{"/bin/busybox", "/dev/null"},
		Write: []string{"/newfile", "/tmp/ok"},
	}, false)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	if r.Cwd != "/" {
		t.Errorf("cwd: got %q, want /", r.Cwd)
	}
	if st := r.Stat["/bin/busybox"]; st.Type != "file" {
		t.Errorf("/bin/busybox: %+v", st)
	}
	if st := r.Stat["/dev/null"]; st.Type != "char" || st.Major != 1 || st.Minor != 3 {
		t.Errorf("/dev/null: %+v", st)
	}
	wantMount(t, r, "/proc/keys", "tmpfs")
	if got := r.Write["/newfile"]; !strings.Contains(got, "read-only") {
		t.Errorf("write /newfile on a read-only root: %q", got)
	}
	if got := r.Write["/tmp/ok"]; got != "" {
		t.Errorf("write /tmp/ok: %q", got)
	}
	// The host's procfs and sysfs were detached before the chroot.
	for _, m := range r.Mounts {
		if (m.FSType == "proc" || m.FSType == "sysfs") && m.Root == "/" && m.Mountpoint != "/proc" {
			t.Errorf("full %s still mounted at %s", m.FSType, m.Mountpoint)
		}
	}
}

// TestSetupSymlinkAttacks: destinations that are symlinks in the image
// (absolute, or climbing with ..) are resolved inside the rootfs.
func TestSetupSymlinkAttacks(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, 0)
	outside := t.TempDir()
	mustSymlink(t, "/etc", filepath.Join(root, "abs"))
	mustSymlink(t, "../../../../../../../../var/log", filepath.Join(root, "climb"))
	mustSymlink(t, outside, filepath.Join(root, "hostpath"))
	mustSymlink(t, "/etc/hostname", filepath.Join(root, "filelink"))
	// As in many images: a dangling /etc/resolv.conf that runtimes bind a
	// file onto. The mountpoint is created where it points, in the root.
	if err := os.MkdirAll(filepath.Join(root, "var/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "../run/resolve/stub.conf", filepath.Join(root, "var/etc/resolv.conf"))
	hostDir, hostFile := hostBindSources(t)
	spec := &specs.Spec{
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/abs", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/climb", Type: "bind", Source: hostDir, Options: []string{"rbind"}},
			{Destination: "/hostpath/sub", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/filelink", Type: "bind", Source: hostFile, Options: []string{"bind"}},
			{Destination: "/../../../../up", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/var/etc/resolv.conf", Type: "bind", Source: hostFile, Options: []string{"rbind", "rprivate"}},
		},
	}
	r := runHelper(t, helperInput{Spec: spec, Rootfs: root, Read: []string{"/var/log/hello", "/etc/hostname", "/var/etc/resolv.conf"}}, false)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	wantMount(t, r, "/etc", "tmpfs")
	wantMount(t, r, "/var/log", "")
	wantMount(t, r, filepath.Join(outside, "sub"), "tmpfs")
	wantMount(t, r, "/up", "tmpfs")
	if got := r.Read["/var/log/hello"]; got != "from host" {
		t.Errorf("/var/log/hello: got %q", got)
	}
	// /etc is a tmpfs by then, so /etc/hostname was created in it.
	if m := findMount(r, "/etc/hostname"); m == nil {
		t.Errorf("no mount at /etc/hostname")
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); err == nil {
		t.Errorf("a directory was created outside the rootfs")
	}
	wantMount(t, r, "/var/run/resolve/stub.conf", "")
	if got := r.Read["/var/etc/resolv.conf"]; got != "host file" {
		t.Errorf("/var/etc/resolv.conf: got %q", got)
	}
}

// TestSetupProcOnSymlink: procfs must land on an ordinary directory.
func TestSetupProcOnSymlink(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, 0)
	if err := os.Remove(filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "/tmp", filepath.Join(root, "proc"))
	spec := &specs.Spec{Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}}
	r := runHelper(t, helperInput{Spec: spec, Rootfs: root}, false)
	want := `mount "proc" on /proc: filesystem "proc" must be mounted on an ordinary directory`
	if r.SetupErr != want {
		t.Errorf("got %q, want %q", r.SetupErr, want)
	}
}

// TestSetupFakeDevNull: an image whose /dev/null is not the null device
// (and /dev not mounted, so it is kept) cannot be used for masking
// (CVE-2025-31133).
func TestSetupFakeDevNull(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, 0)
	mustSymlink(t, "/proc/sys/kernel/core_pattern", filepath.Join(root, "dev/null"))
	spec := &specs.Spec{
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux:  &specs.Linux{MaskedPaths: []string{"/proc/keys"}},
	}
	r := runHelper(t, helperInput{Spec: spec, Rootfs: root}, false)
	if !strings.Contains(r.SetupErr, "null device") {
		t.Errorf("got %q, want an error about /dev/null", r.SetupErr)
	}
}

func TestSetupErrors(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name string
		m    specs.Mount
		want string
	}{
		{"unknown fstype", specs.Mount{Destination: "/x", Type: "nosuchfs", Source: "none"},
			`mount "none" on /x: no such device`},
		{"idmap", specs.Mount{Destination: "/x", Type: "bind", Source: "/tmp", Options: []string{"rbind", "idmap"}},
			`mount "/tmp" on /x: id-mapped mount was not prepared (it needs a bind mount and a user namespace)`},
		{"missing bind source", specs.Mount{Destination: "/x", Type: "bind", Source: "/does/not/exist", Options: []string{"bind"}},
			`mount "/does/not/exist" on /x: stat /does/not/exist: no such file or directory`},
		{"inside proc", specs.Mount{Destination: "/proc/self", Type: "tmpfs", Source: "tmpfs"},
			`mount "tmpfs" on /proc/self: mounts inside /proc are not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := makeRootfs(t, 0)
			spec := &specs.Spec{Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, tc.m}}
			r := runHelper(t, helperInput{Spec: spec, Rootfs: root}, false)
			if r.SetupErr != tc.want {
				t.Errorf("got %q, want %q", r.SetupErr, tc.want)
			}
		})
	}
}

// TestSetupUserns runs Setup as root of a user namespace without its own
// network namespace: mknod is not permitted (devices are bind-mounted from
// the host) and sysfs cannot be mounted (the host's /sys is bound).
func TestSetupUserns(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, usernsBase)
	spec := &specs.Spec{
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}},
		},
		Linux: &specs.Linux{
			Namespaces:    []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.MountNamespace}, {Type: specs.PIDNamespace}},
			MaskedPaths:   []string{"/proc/keys", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys"},
		},
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/kept"), []byte("copied up"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(root, "tmp/kept"), usernsBase+5, usernsBase+5); err != nil {
		t.Fatal(err)
	}
	r := runHelper(t, helperInput{
		Spec: spec, Rootfs: root, Console: true,
		Stat: []string{"/dev/null", "/dev/zero", "/dev/tty", "/sys", "/tmp/kept"},
		Read: []string{"/tmp/kept"},
	}, true)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	for p, want := range map[string][2]uint32{"/dev/null": {1, 3}, "/dev/zero": {1, 5}, "/dev/tty": {5, 0}} {
		if st := r.Stat[p]; st.Type != "char" || st.Major != want[0] || st.Minor != want[1] {
			t.Errorf("%s: got %+v, want char %d:%d", p, st, want[0], want[1])
		}
		wantMount(t, r, p, "devtmpfs")
	}
	wantMount(t, r, "/sys", "sysfs", "ro", "nosuid")
	if st := r.Stat["/sys"]; st.Fstype != unix.SYSFS_MAGIC {
		t.Errorf("/sys: fstype %#x", st.Fstype)
	}
	wantMount(t, r, "/sys/firmware", "tmpfs", "ro")
	wantMount(t, r, "/proc/sys", "proc", "ro")
	wantMount(t, r, "/", "", "ro")
	if got := r.Read["/tmp/kept"]; got != "copied up" {
		t.Errorf("tmpcopyup: /tmp/kept reads %q", got)
	}
	if st := r.Stat["/tmp/kept"]; st.UID != 5 || st.Perm != 0o600 {
		t.Errorf("tmpcopyup: /tmp/kept is %+v, want uid 5 mode 0600", st)
	}
	if r.Console != "" {
		t.Errorf("console: %s", r.Console)
	}
}

// TestSetupRecursiveReadonly: "rro" makes submounts of a bind read-only
// too, where "ro" only affects the top mount.
func TestSetupRecursiveReadonly(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, 0)
	src := t.TempDir()
	for _, d := range []string{"a/sub", "b/sub"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := &specs.Spec{
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/rro", Type: "bind", Source: filepath.Join(src, "a"), Options: []string{"rbind", "rro"}},
			{Destination: "/ro", Type: "bind", Source: filepath.Join(src, "b"), Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{RootfsPropagation: "rslave"},
	}
	r := runHelper(t, helperInput{
		Spec: spec, Rootfs: root,
		Before: []string{"tmpfs " + filepath.Join(src, "a/sub"), "tmpfs " + filepath.Join(src, "b/sub")},
		Write:  []string{"/rro/sub/x", "/ro/sub/x", "/ro/x"},
	}, false)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	wantMount(t, r, "/rro", "", "ro")
	wantMount(t, r, "/rro/sub", "tmpfs", "ro")
	wantMount(t, r, "/ro/sub", "tmpfs", "rw")
	if got := r.Write["/rro/sub/x"]; !strings.Contains(got, "read-only") {
		t.Errorf("write /rro/sub/x: %q, want read-only", got)
	}
	if got := r.Write["/ro/sub/x"]; got != "" {
		t.Errorf("write /ro/sub/x: %q", got)
	}
	if got := r.Write["/ro/x"]; !strings.Contains(got, "read-only") {
		t.Errorf("write /ro/x: %q, want read-only", got)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestSetupCgroup: the container sees its own cgroup. On a v1 host that is
// a tmpfs with one mount per hierarchy: a bind of the container's cgroup,
// or with a cgroup namespace a fresh cgroup mount; on a v2 host cgroup2.
// A hybrid host has a cgroup2 hierarchy too, so the v2 path runs there as
// well.
func TestSetupCgroup(t *testing.T) {
	requireRoot(t)
	own, _, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	mode := cgroups.Mode()
	unified := []bool{mode == cgroups.Unified}
	if mode == cgroups.Hybrid {
		unified = append(unified, true)
	}
	for _, v2 := range unified {
		for _, cgroupns := range []bool{false, true} {
			t.Run(fmt.Sprintf("v2=%v,cgroupns=%v", v2, cgroupns), func(t *testing.T) {
				testCgroup(t, own, v2, cgroupns)
			})
		}
	}
}

func testCgroup(t *testing.T, own map[string]string, v2, cgroupns bool) {
	root := makeRootfs(t, 0)
	spec := &specs.Spec{
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro", "nosuid"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}},
	}
	if cgroupns {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	r := runHelper(t, helperInput{Spec: spec, Rootfs: root, Cgroup: cgroupns, Unified: v2,
		Write: []string{"/sys/fs/cgroup/x"}}, false)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	if got := r.Write["/sys/fs/cgroup/x"]; !strings.Contains(got, "read-only") {
		t.Errorf("write /sys/fs/cgroup/x: %q, want read-only", got)
	}
	if v2 {
		// A fresh cgroup2 mount: its root is the cgroup namespace's root.
		if m := wantMount(t, r, "/sys/fs/cgroup", "cgroup2", "ro", "nosuid", "noexec", "nodev"); m != nil && m.Root != "/" {
			t.Errorf("/sys/fs/cgroup: root %q, want /", m.Root)
		}
		return
	}
	wantMount(t, r, "/sys/fs/cgroup", "tmpfs", "ro", "nosuid", "noexec", "nodev")
	n := 0
	for _, m := range r.Mounts {
		if m.FSType == "cgroup2" {
			t.Errorf("cgroup2 mount at %s on a v1 layout", m.Mountpoint)
		}
		if m.FSType != "cgroup" {
			continue
		}
		n++
		if !hasOpt(m.Options, "ro") {
			t.Errorf("%s: options %s, want ro", m.Mountpoint, m.Options)
		}
		if !strings.HasPrefix(m.Mountpoint, "/sys/fs/cgroup/") {
			t.Errorf("cgroup mount at %s", m.Mountpoint)
		}
	}
	if n == 0 {
		t.Errorf("no cgroup v1 mounts in the container")
	}
	// The container's memory cgroup is the root of what it sees.
	m := wantMount(t, r, "/sys/fs/cgroup/memory", "cgroup")
	want := own["memory"]
	if cgroupns {
		want = "/"
	}
	if m != nil && m.Root != want {
		t.Errorf("/sys/fs/cgroup/memory: root %q, want %q", m.Root, want)
	}
}

// TestSetupPropagation: rootfsPropagation applies to the new /, and a
// mount's own propagation option to it. The child first makes its / shared
// and runs Setup in a nested mount namespace, whose / is then a peer of it
// as a container's is of a systemd host's: so rslave has a master.
func TestSetupPropagation(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		prop, want string // want: a prefix in mountinfo's optional fields, "" for private
	}{
		{"", ""}, {"rprivate", ""}, {"rslave", "master:"}, {"rshared", "shared:"}, {"runbindable", "unbindable"},
	} {
		t.Run("root="+tc.prop, func(t *testing.T) {
			root := makeRootfs(t, 0)
			hostDir, _ := hostBindSources(t)
			spec := &specs.Spec{
				Mounts: []specs.Mount{
					{Destination: "/proc", Type: "proc", Source: "proc"},
					{Destination: "/shared", Type: "bind", Source: hostDir, Options: []string{"rbind", "rshared"}},
					{Destination: "/private", Type: "bind", Source: hostDir, Options: []string{"rbind", "rprivate"}},
				},
				Linux: &specs.Linux{RootfsPropagation: tc.prop},
			}
			r := runHelper(t, helperInput{Spec: spec, Rootfs: root, Before: []string{"rshared /"}, Nest: true}, false)
			if r.SetupErr != "" {
				t.Fatalf("Setup: %s", r.SetupErr)
			}
			if m := wantMount(t, r, "/", ""); m != nil {
				if tc.want == "" && m.Optional != "" || !strings.Contains(m.Optional, tc.want) {
					t.Errorf("/: propagation %q, want %q", m.Optional, tc.want)
				}
			}
			if tc.prop == "rshared" || tc.prop == "runbindable" {
				// Applied recursively after the mounts, as runc does.
				return
			}
			if m := wantMount(t, r, "/shared", ""); m != nil && !strings.Contains(m.Optional, "shared:") {
				t.Errorf("/shared: propagation %q, want shared", m.Optional)
			}
			if m := wantMount(t, r, "/private", ""); m != nil && m.Optional != "" {
				t.Errorf("/private: propagation %q, want private", m.Optional)
			}
		})
	}
}

// TestSetupReadonlyFile: a read-only path may be a file.
func TestSetupReadonlyFile(t *testing.T) {
	requireRoot(t)
	root := makeRootfs(t, 0)
	for _, f := range []string{"data/locked", "data/open"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := &specs.Spec{
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux:  &specs.Linux{ReadonlyPaths: []string{"/data/locked"}},
	}
	r := runHelper(t, helperInput{Spec: spec, Rootfs: root, Write: []string{"/data/locked", "/data/open"}}, false)
	if r.SetupErr != "" {
		t.Fatalf("Setup: %s", r.SetupErr)
	}
	wantMount(t, r, "/data/locked", "", "ro")
	if got := r.Write["/data/locked"]; !strings.Contains(got, "read-only") {
		t.Errorf("write /data/locked: %q, want read-only", got)
	}
	if got := r.Write["/data/open"]; got != "" {
		t.Errorf("write /data/open: %q", got)
	}
}

// TestSetupCgroup2Userns: in a user namespace cgroup2 can only be mounted
// with a cgroup namespace of its own; without, the host's hierarchy is
// bound read-only instead.
func TestSetupCgroup2Userns(t *testing.T) {
	requireRoot(t)
	if mode := cgroups.Mode(); mode != cgroups.Unified && mode != cgroups.Hybrid {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	var host unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &host); err != nil {
		t.Fatal(err)
	}
	for _, cgroupns := range []bool{false, true} {
		t.Run(fmt.Sprintf("cgroupns=%v", cgroupns), func(t *testing.T) {
			root := makeRootfs(t, usernsBase)
			spec := &specs.Spec{
				Mounts: []specs.Mount{
					{Destination: "/proc", Type: "proc", Source: "proc"},
					{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
					{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
				},
				Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.MountNamespace}}},
			}
			if cgroupns {
				spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
			}
			r := runHelper(t, helperInput{Spec: spec, Rootfs: root, Cgroup: cgroupns, Unified: true,
				Stat: []string{"/sys/fs/cgroup"}}, true)
			if r.SetupErr != "" {
				t.Fatalf("Setup: %s", r.SetupErr)
			}
			want := int64(unix.CGROUP2_SUPER_MAGIC)
			if !cgroupns {
				want = int64(host.Type) // the bind of the host's
			}
			wantMount(t, r, "/sys/fs/cgroup", "", "ro", "nosuid", "noexec", "nodev")
			if got := r.Stat["/sys/fs/cgroup"].Fstype; got != want {
				t.Errorf("/sys/fs/cgroup: filesystem %#x, want %#x", got, want)
			}
		})
	}
}
