package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// nsIno is the inode of a namespace file, what readlink shows in brackets.
func nsIno(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(st.Ino, 10)
}

// Every namespace of the spec is new; the others are the host's.
func TestNewNamespaces(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	out := r.inside(b, "for n in pid net ipc uts mnt cgroup user; do echo $n $(readlink /proc/self/ns/$n); done")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, link, _ := strings.Cut(l, " ")
		host, err := os.Readlink("/proc/self/ns/" + name)
		if err != nil {
			t.Fatal(err)
		}
		shared := link == host
		if want := name == "user"; shared != want {
			t.Errorf("namespace %s: container %s, host %s; want shared=%v", name, link, host, want)
		}
	}
	// A new pid namespace: the workload is pid 1; a new net namespace:
	// only the loopback interface.
	if out := r.inside(b, "echo $$; ls /sys/class/net"); out != "1\nlo\n" {
		t.Errorf("pid and net namespace view: %q", out)
	}
}

// A namespace given by path is joined, not created.
func TestJoinNetNamespaceByPath(t *testing.T) {
	integration(t, "ip")
	r := newRC(t)
	name := fmt.Sprintf("rc-cli-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	// Mark the namespace: its loopback is up, a new one's is down.
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	path := filepath.Join("/var/run/netns", name)
	b := newBundle(t, r)
	for i, ns := range b.spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			b.spec.Linux.Namespaces[i].Path = path
		}
	}
	out := r.inside(b, "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate")
	want := fmt.Sprintf("net:[%s]", nsIno(t, path))
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) < 1 || lines[0] != want {
		t.Errorf("joined net namespace: got %q, want %s", out, want)
	}
	if !hasLine(out, "unknown") { // "down" in a new namespace
		t.Errorf("the joined namespace's loopback is not up: %q", out)
	}
}

// A namespace of another process, joined by /proc/PID/ns path (a
// Kubernetes pod's containers join the sandbox's ipc and uts this way).
func TestJoinNamespacesOfContainer(t *testing.T) {
	integration(t)
	r := newRC(t)
	sandbox := newBundle(t, r, "sleep", "1000")
	sandbox.spec.Hostname = "sandbox"
	sandbox.save()
	pid := r.runningContainer(sandbox).Pid

	b := newBundle(t, r)
	b.spec.Hostname = "" // the hostname is the sandbox's to set
	for i, ns := range b.spec.Linux.Namespaces {
		switch ns.Type {
		case specs.UTSNamespace:
			b.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", pid)
		case specs.IPCNamespace:
			b.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/ipc", pid)
		case specs.NetworkNamespace:
			b.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", pid)
		}
	}
	out := r.inside(b, "hostname; readlink /proc/self/ns/ipc")
	want := fmt.Sprintf("sandbox\nipc:[%s]\n", nsIno(t, fmt.Sprintf("/proc/%d/ns/ipc", pid)))
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// A new user namespace with id mappings: root inside is an unprivileged
// uid outside.
func TestUserNamespace(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The rootfs belongs to the mapped root, as an image unpacked for
	// this mapping would.
	chownTree(t, b.rootfs(), 100000, 100000)
	b.save()
	pid := r.runningContainer(b).Pid

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if got := statusField(string(status), "Uid"); !strings.HasPrefix(got, "100000\t") {
		t.Errorf("host view of the init's uid: %q, want 100000", got)
	}
	out := r.ok("exec", b.id, "sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/x && stat -c %u /tmp/x").stdout
	fields := strings.Fields(out)
	if want := []string{"0", "0", "100000", "65536", "0", "100000", "65536", "0"}; strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Errorf("inside the user namespace: got %v, want %v", fields, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(b.rootfs(), "tmp", "x"), &st); err == nil && st.Uid != 100000 {
		t.Errorf("a file root made inside belongs to %d on the host, want 100000", st.Uid)
	}
}

func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The bundle directory and the test's temporary directory (0700) must
	// be reachable by the mapped root.
	for d := filepath.Dir(dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
}
