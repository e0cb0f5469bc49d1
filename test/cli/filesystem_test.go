package cli

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMaskedAndReadonlyPaths(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	b.spec.Linux.MaskedPaths = append(b.spec.Linux.MaskedPaths, "/etc/secret", "/work")
	b.spec.Linux.ReadonlyPaths = append(b.spec.Linux.ReadonlyPaths, "/data")
	out := r.inside(b, `
echo "secret=[$(cat /etc/secret)]"
echo "work=[$(ls -A /work)]"
touch /work/x 2>/dev/null && echo work-writable || echo work-readonly
touch /data/x 2>/dev/null && echo data-writable || echo data-readonly
touch /tmp/x && echo tmp-writable
echo "kcore=[$(head -c 4 /proc/kcore 2>/dev/null)]"
echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable || echo procsys-readonly
`)
	for _, want := range []string{"secret=[]", "work=[]", "work-readonly", "data-readonly", "tmp-writable", "kcore=[]", "procsys-readonly"} {
		if !hasLine(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestReadonlyRootfs(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	b.spec.Root.Readonly = true
	out := r.inside(b, "touch /x 2>/dev/null && echo root-writable || echo root-readonly; touch /dev/shm/x && echo shm-writable")
	if out != "root-readonly\nshm-writable\n" {
		t.Errorf("got %q", out)
	}
}

func TestSysctl(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	// One sysctl of the network namespace, one of the ipc namespace.
	for _, c := range []struct{ key, file, value string }{
		{"net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward", "1"},
		{"kernel.shmmni", "/proc/sys/kernel/shmmni", "1234"},
	} {
		b.spec.Linux.Sysctl = map[string]string{c.key: c.value}
		b.spec.Process.Args = []string{"cat", c.file}
		b.save()
		res := r.runContainer(b)
		if res.code != 0 || res.stdout != c.value+"\n" {
			t.Errorf("sysctl %s=%s: %v", c.key, c.value, res)
		}
	}
	// A sysctl of a namespace the container shares with the host is
	// refused. (The value is the host's own, so that a runtime that
	// wrongly accepts it changes nothing.)
	host, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	b.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": strings.TrimSpace(string(host))}
	var keep []specs.LinuxNamespace
	for _, ns := range b.spec.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			keep = append(keep, ns)
		}
	}
	b.spec.Linux.Namespaces = keep
	b.save()
	before := railcarProcesses()
	if res := r.runContainer(b); res.code == 0 {
		t.Errorf("a host sysctl was accepted: %v", res)
	}
	r.checkNoLeak(b, before)
}

func TestDevices(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	mode := os.FileMode(0o666)
	uid, gid := uint32(1000), uint32(1000)
	b.spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/rcnull", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid}}
	b.spec.Linux.Resources.Devices = append(b.spec.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: int64p(1), Minor: int64p(3), Access: "rwm"})
	out := r.inside(b, `
stat -c '%n %F %t:%T %a %u:%g' /dev/rcnull
echo hi > /dev/rcnull && echo write-ok
for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo dev-$d; done
head -c 4 /dev/zero | wc -c
`)
	for _, want := range []string{"/dev/rcnull character special file 1:3 666 1000:1000", "write-ok",
		"dev-null", "dev-zero", "dev-full", "dev-random", "dev-urandom", "dev-tty", "4"} {
		if !hasLine(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// The default device cgroup denies what the spec does not allow:
	// mknod of a disk works as root but opening it does not.
	out = r.inside(b, "mknod /tmp/sda b 8 0 2>/dev/null; head -c 1 /tmp/sda >/dev/null 2>&1 && echo disk-open || echo disk-denied")
	if strings.TrimSpace(out) != "disk-denied" {
		t.Errorf("device cgroup: %q", out)
	}
}

func int64p(v int64) *int64 { return &v }

func TestMounts(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	host := t.TempDir()
	b.spec.Mounts = append(b.spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777"}},
	)
	out := r.inside(b, "grep -E ' /(data|scratch) ' /proc/self/mountinfo | cut -d' ' -f5,6; touch /scratch/x && echo scratch-ok")
	if !strings.Contains(out, "/data ro") || !strings.Contains(out, "/scratch rw") || !hasLine(out, "scratch-ok") {
		t.Errorf("mounts:\n%s", out)
	}
	if len(mountsUnder(b.dir)) != 0 {
		t.Errorf("container mounts visible on the host: %v", mountsUnder(b.dir))
	}
}
