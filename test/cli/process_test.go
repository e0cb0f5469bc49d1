package cli

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The spec's process attributes, seen from inside.
func TestProcessAttributes(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	umask := uint32(0o027)
	b.spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
	b.spec.Process.Cwd = "/work"
	b.spec.Process.Env = []string{"PATH=/bin:/usr/bin", "FOO=bar baz", "HOME=/work"}
	b.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1000}, {Type: "RLIMIT_NPROC", Soft: 300, Hard: 300}}
	b.spec.Process.NoNewPrivileges = true
	caps := []string{"CAP_CHOWN", "CAP_KILL"}
	b.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	out := r.inside(b, `cat /proc/self/status; echo "umask=$(umask)"; echo "cwd=$(pwd)"; echo "FOO=$FOO"; echo "nofile=$(ulimit -Sn)/$(ulimit -Hn)"; echo "nproc=$(ulimit -u)"`)

	for _, c := range []struct{ field, want string }{
		{"Uid", "1000\t1000\t1000\t1000"},
		{"Gid", "1000\t1000\t1000\t1000"},
		{"Groups", "10 20"},
		{"NoNewPrivs", "1"},
		{"CapBnd", "0000000000000021"},
		// A non-root user keeps no effective or permitted capability
		// unless they are ambient.
		{"CapAmb", "0000000000000000"},
	} {
		if got := statusField(out, c.field); got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, got, c.want)
		}
	}
	for _, want := range []string{"umask=0027", "cwd=/work", "FOO=bar baz", "nofile=512/1000", "nproc=300"} {
		if !hasLine(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// Root in the container gets exactly the spec's capability sets.
func TestCapabilitiesRoot(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	b.spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
		Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL"},
		Inheritable: []string{"CAP_KILL"},
		Ambient:     []string{"CAP_KILL"},
	}
	out := r.inside(b, "cat /proc/self/status")
	for _, c := range []struct{ field, want string }{
		{"CapBnd", "0000000000002021"},
		{"CapEff", "0000000000000021"},
		{"CapPrm", "0000000000000021"},
		{"CapInh", "0000000000000020"},
		{"CapAmb", "0000000000000020"},
	} {
		if got := statusField(out, c.field); got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, got, c.want)
		}
	}
	// chown works with CAP_CHOWN; a capability outside the sets does not.
	b.spec.Process.Capabilities.Bounding = []string{"CAP_KILL"}
	b.spec.Process.Capabilities.Effective = []string{"CAP_KILL"}
	b.spec.Process.Capabilities.Permitted = []string{"CAP_KILL"}
	b.spec.Process.Capabilities.Inheritable = nil
	b.spec.Process.Capabilities.Ambient = nil
	b.spec.Process.Args = []string{"sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"}
	b.save()
	if res := r.runContainer(b); res.code == 0 {
		t.Errorf("chown without CAP_CHOWN succeeded")
	}
}

func TestHostnameDomainname(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	b.spec.Hostname = "rc-host"
	b.spec.Domainname = "rc.example"
	out := r.inside(b, "hostname; cat /proc/sys/kernel/domainname")
	if want := "rc-host\nrc.example\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// rlimits above the hard limit need CAP_SYS_RESOURCE, which the machine
// may not grant: railcar then fails with a clear error.
func TestRlimitTooHigh(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "true")
	b.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 40, Hard: 1 << 40}}
	b.save()
	before := railcarProcesses()
	res := r.runContainer(b)
	if res.code == 0 {
		t.Skip("the machine allows raising RLIMIT_NOFILE to 2^40")
	}
	checkErrorLine(t, res)
	if !strings.Contains(strings.ToLower(res.stderr), "rlimit") {
		t.Errorf("error does not name the rlimit: %q", res.stderr)
	}
	r.checkNoLeak(b, before)
}

// A seccomp profile from the spec: mkdir fails with EPERM, the rest runs.
func TestSeccomp(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r)
	errno := uint(1) // EPERM
	b.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{
			Names:    []string{"mkdir", "mkdirat"},
			Action:   specs.ActErrno,
			ErrnoRet: &errno,
		}},
	}
	out := r.inside(b, "mkdir /tmp/d 2>&1 || echo mkdir-denied; touch /tmp/f && echo touch-ok; grep ^Seccomp: /proc/self/status")
	for _, want := range []string{"mkdir-denied", "touch-ok", "Seccomp:\t2"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// --init runs rc-init as PID 1: the process is not PID 1, its orphans are
// reaped, and its exit status is the container's.
func TestInitMode(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sh", "-c", `tr '\0' ' ' < /proc/1/cmdline; echo; echo $$; (sleep 0.2 &); sleep 0.5; ps -o stat,comm | grep -c '^Z' ; exit 5`)
	res := r.run("--init", "run", "-b", b.dir, b.id)
	if res.code != 5 {
		t.Fatalf("exit status: %v", res)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "rc-init") || lines[1] == "1" || lines[2] != "0" {
		t.Errorf("with --init: pid 1 %q, $$ %q, zombies %q (want rc-init, not 1, 0)", lines[0], lines[1], lines[len(lines)-1])
	}
	r.checkNoLeak(b, nil)

	// The annotation turns it on per container.
	c := newBundle(t, r, "sh", "-c", `tr '\0' ' ' < /proc/1/cmdline`)
	c.spec.Annotations = map[string]string{"run.railcar.init": "true"}
	c.save()
	if res := r.runContainer(c); res.code != 0 || !strings.HasPrefix(res.stdout, "rc-init") {
		t.Errorf("with the annotation: %v", res)
	}
}
