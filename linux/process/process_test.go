package process

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A uid and gid no host passwd or group file is expected to name.
const (
	testUID = 54321
	testGID = 54322
)

func wantStatus(t *testing.T, who string, r report, key, want string) {
	t.Helper()
	if got := r.Status[key]; got != want {
		t.Errorf("%s %s: got %q, want %q", who, key, got, want)
	}
}

func TestApplyRootCapabilities(t *testing.T) {
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"}
	p := probeProcess(t)
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	res := mustApply(t, helperRequest{Config: Config{Process: p, ContainerID: "caps"}})

	want := capMask(t, caps...)
	for who, r := range map[string]report{"before exec": res.pre, "after exec": res.post} {
		wantStatus(t, who, r, "CapBnd", want)
		wantStatus(t, who, r, "CapEff", want)
		wantStatus(t, who, r, "CapPrm", want)
		wantStatus(t, who, r, "CapInh", capMask(t))
		wantStatus(t, who, r, "CapAmb", capMask(t))
		wantStatus(t, who, r, "NoNewPrivs", "0")
		wantStatus(t, who, r, "Seccomp", "0")
		wantStatus(t, who, r, "Uid", "0\t0\t0\t0")
	}
}

func TestApplyNoCapabilities(t *testing.T) {
	// nil capabilities means none, as in runc.
	res := mustApply(t, helperRequest{Config: Config{Process: probeProcess(t), ContainerID: "nocaps"}})
	for who, r := range map[string]report{"before exec": res.pre, "after exec": res.post} {
		for _, set := range []string{"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"} {
			wantStatus(t, who, r, set, capMask(t))
		}
	}
}

func TestApplyUserWithAmbientCapabilities(t *testing.T) {
	dir := t.TempDir() // 0700 root: only the runtime, as root, may enter it
	p := probeProcess(t)
	p.Cwd = dir
	p.User = specs.User{UID: testUID, GID: testGID, AdditionalGids: []uint32{2000, 2001}}
	nbs := []string{"CAP_NET_BIND_SERVICE"}
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
		Effective:   nbs,
		Permitted:   nbs,
		Inheritable: nbs,
		Ambient:     nbs,
	}
	res := mustApply(t, helperRequest{Config: Config{Process: p, ContainerID: "ambient"}})

	for who, r := range map[string]report{"before exec": res.pre, "after exec": res.post} {
		wantStatus(t, who, r, "Uid", fmt.Sprintf("%d\t%d\t%d\t%d", testUID, testUID, testUID, testUID))
		wantStatus(t, who, r, "Gid", fmt.Sprintf("%d\t%d\t%d\t%d", testGID, testGID, testGID, testGID))
		wantStatus(t, who, r, "Groups", "2000 2001")
		wantStatus(t, who, r, "CapBnd", capMask(t, "CAP_NET_BIND_SERVICE", "CAP_CHOWN"))
		for _, set := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb"} {
			wantStatus(t, who, r, set, capMask(t, nbs...))
		}
	}
	if res.post.Cwd != dir {
		t.Errorf("cwd: got %q, want %q (entered as root before the user change)", res.post.Cwd, dir)
	}
	if res.post.Home != "/" {
		t.Errorf("HOME: got %q, want / for a uid without passwd entry", res.post.Home)
	}
}

func TestApplyUserWithoutAmbient(t *testing.T) {
	p := probeProcess(t)
	p.User = specs.User{UID: testUID, GID: testGID}
	nbs := []string{"CAP_NET_BIND_SERVICE"}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: nbs, Effective: nbs, Permitted: nbs}
	res := mustApply(t, helperRequest{Config: Config{Process: p, ContainerID: "noambient"}})

	// Apply sets exactly the spec's sets; the kernel then drops them at
	// execve of a non-root user without ambient capabilities.
	wantStatus(t, "before exec", res.pre, "CapEff", capMask(t, nbs...))
	wantStatus(t, "before exec", res.pre, "CapPrm", capMask(t, nbs...))
	wantStatus(t, "before exec", res.pre, "CapInh", capMask(t))
	wantStatus(t, "before exec", res.pre, "CapAmb", capMask(t))
	wantStatus(t, "after exec", res.post, "CapEff", capMask(t))
	wantStatus(t, "after exec", res.post, "CapPrm", capMask(t))
	wantStatus(t, "after exec", res.post, "Groups", "")
}

func TestApplyCapabilityMissingFromHost(t *testing.T) {
	p := probeProcess(t)
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_SYS_RESOURCE", "CAP_CHOWN"},
		Effective: []string{"CAP_SYS_RESOURCE"},
		Permitted: []string{"CAP_SYS_RESOURCE"},
	}
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{DropCaps: []string{"CAP_SYS_RESOURCE"}},
	}, "process.capabilities.effective: CAP_SYS_RESOURCE is not in this host's capability bounding set")
}

func TestApplyBoundingOnlyCapabilityMissingFromHostIsFine(t *testing.T) {
	p := probeProcess(t)
	p.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_RESOURCE", "CAP_CHOWN"}}
	res := mustApply(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{DropCaps: []string{"CAP_SYS_RESOURCE"}},
	})
	wantStatus(t, "after exec", res.post, "CapBnd", capMask(t, "CAP_CHOWN"))
}

func TestApplyRlimits(t *testing.T) {
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	// Go raises the soft NOFILE limit at startup when it is below the hard
	// one, and puts it back at execve unless told not to. Make sure the
	// helper starts that way, so that a lost limit shows.
	if nofile.Cur+1 >= nofile.Max {
		lowered := syscall.Rlimit{Cur: nofile.Max / 2, Max: nofile.Max}
		if err := syscall.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			syscall.Setrlimit(unix.RLIMIT_NOFILE, &syscall.Rlimit{Cur: nofile.Cur, Max: nofile.Max})
		})
	}
	p := probeProcess(t)
	// cat is not a Go program: Go raises its own soft NOFILE limit at
	// startup, which would hide what Apply set.
	p.Args = []string{"cat", "/proc/self/limits"}
	// The hard NOFILE limit stays as it is: Go's restore at execve sets the
	// hard limit too, and fails silently (no CAP_SYS_RESOURCE) after a
	// lowered one.
	p.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 256, Hard: nofile.Max},
		{Type: "RLIMIT_CORE", Soft: 4096, Hard: 8192},
	}
	res := mustApply(t, helperRequest{Config: Config{Process: p}})
	for _, want := range [][]string{
		{"Max open files", "256", strconv.FormatUint(nofile.Max, 10), "files"},
		{"Max core file size", "4096", "8192", "bytes"},
	} {
		found := false
		for line := range strings.Lines(res.output) {
			if strings.HasPrefix(line, want[0]) {
				found = true
				if got := strings.Fields(strings.TrimPrefix(line, want[0])); !slices.Equal(got, want[1:]) {
					t.Errorf("%s: got %v, want %v", want[0], got, want[1:])
				}
			}
		}
		if !found {
			t.Errorf("no %q in the workload's limits:\n%s", want[0], res.output)
		}
	}
}

func TestApplyRlimitRaiseNeedsSysResource(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	p := probeProcess(t)
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: cur.Max + 1}}
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{DropCaps: []string{"CAP_SYS_RESOURCE"}},
	}, fmt.Sprintf("set RLIMIT_NOFILE to 1024/%d: raising the hard limit above %d needs CAP_SYS_RESOURCE, which is not in this host's capability bounding set", cur.Max+1, cur.Max))
}

func TestApplyOOMScoreAdj(t *testing.T) {
	p := probeProcess(t)
	v := 500
	p.OOMScoreAdj = &v
	res := mustApply(t, helperRequest{Config: Config{Process: p}})
	if res.post.OOMScoreAdj != "500" {
		t.Errorf("oom_score_adj: got %q, want 500", res.post.OOMScoreAdj)
	}
}

// A procfs file mounted over oom_score_adj does not take the write.
func TestApplyOOMScoreAdjOvermounted(t *testing.T) {
	p := probeProcess(t)
	v := 500
	p.OOMScoreAdj = &v
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{OverOOM: "/proc/self/timerslack_ns"},
	}, "something is mounted over it")
}

func TestApplyOOMScoreAdjLowerNeedsSysResource(t *testing.T) {
	p := probeProcess(t)
	low := -1000
	p.OOMScoreAdj = &low
	high := 100
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{DropCaps: []string{"CAP_SYS_RESOURCE"}, OOMScoreAdj: &high},
	}, "set oom_score_adj to -1000 (now 100): lowering it needs CAP_SYS_RESOURCE, which is not in this host's capability bounding set")
}

func TestApplyUmaskAndCwd(t *testing.T) {
	dir := t.TempDir()
	p := probeProcess(t)
	p.Cwd = dir
	mask := uint32(0o027)
	p.User.Umask = &mask
	res := mustApply(t, helperRequest{Config: Config{Process: p}})
	if res.post.Umask != 0o027 {
		t.Errorf("umask: got %#o, want 027", res.post.Umask)
	}
	if res.post.Cwd != dir {
		t.Errorf("cwd: got %q, want %q", res.post.Cwd, dir)
	}
}

func TestApplyDefaultUmask(t *testing.T) {
	res := mustApply(t, helperRequest{Config: Config{Process: probeProcess(t)}, Setup: setup{Umask: 0o077}})
	if res.post.Umask != 0o022 {
		t.Errorf("umask: got %#o, want 022", res.post.Umask)
	}
}

func TestApplyCwdOutsideRoot(t *testing.T) {
	// CVE-2024-21626: a host directory fd leaked into the container makes
	// /proc/self/fd/N a way out of the root.
	root := t.TempDir()
	outside := t.TempDir()
	p := probeProcess(t)
	p.Cwd = "/proc/self/fd/{fd}"
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{LeakDir: outside, Chroot: root},
	}, "is outside the container root (possible container breakout)")
}

func TestApplyCwdMissing(t *testing.T) {
	p := probeProcess(t)
	p.Cwd = "/nonexistent-railcar-cwd"
	wantApplyError(t, helperRequest{Config: Config{Process: p}}, `chdir to cwd "/nonexistent-railcar-cwd": no such file or directory`)
}

func TestApplyNoNewPrivileges(t *testing.T) {
	p := probeProcess(t)
	p.NoNewPrivileges = true
	res := mustApply(t, helperRequest{Config: Config{Process: p}})
	wantStatus(t, "after exec", res.post, "NoNewPrivs", "1")
}

func TestApplyPersonality(t *testing.T) {
	if _, err := os.Stat("/proc/self/personality"); err != nil {
		t.Skip("no /proc/self/personality")
	}
	res := mustApply(t, helperRequest{Config: Config{
		Process: probeProcess(t),
		Linux:   &specs.Linux{Personality: &specs.LinuxPersonality{Domain: specs.PerLinux32}},
	}})
	if res.post.Personality != "00000008" {
		t.Errorf("personality: got %q, want 00000008", res.post.Personality)
	}
	if res.post.Machine != "i686" {
		t.Errorf("uname machine under LINUX32: got %q, want i686", res.post.Machine)
	}
}

func TestApplySchedulerIOPriorityAffinity(t *testing.T) {
	p := probeProcess(t)
	p.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}
	p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
	p.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0"}
	res := mustApply(t, helperRequest{Config: Config{Process: p}})
	for who, r := range map[string]report{"before exec": res.pre, "after exec": res.post} {
		if r.SchedPolicy != 3 || r.SchedNice != 7 {
			t.Errorf("%s scheduler: got policy %d nice %d, want 3 (SCHED_BATCH) and 7", who, r.SchedPolicy, r.SchedNice)
		}
		if want := 2<<13 | 6; r.IOPrio != want {
			t.Errorf("%s ioprio: got %#x, want %#x", who, r.IOPrio, want)
		}
		if !slices.Equal(r.CPUs, []int{0}) {
			t.Errorf("%s cpus: got %v, want [0]", who, r.CPUs)
		}
	}
}

func TestApplySessionKeyring(t *testing.T) {
	res := mustApply(t, helperRequest{Config: Config{Process: probeProcess(t), ContainerID: "keyringtest"}})
	if !strings.HasSuffix(res.post.Keyring, ";_ses.keyringtest") {
		t.Errorf("session keyring: got %q, want one named _ses.keyringtest", res.post.Keyring)
	}
}

func TestApplyNoNewKeyring(t *testing.T) {
	own, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, unix.KEY_SPEC_SESSION_KEYRING)
	if err != nil {
		t.Skipf("no session keyring here: %v", err)
	}
	res := mustApply(t, helperRequest{Config: Config{Process: probeProcess(t), ContainerID: "keep", NoNewKeyring: true}})
	if res.post.Keyring != own {
		t.Errorf("session keyring: got %q, want the runtime's %q", res.post.Keyring, own)
	}
}

func TestApplyUsername(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1234:1235:Alice:/home/alice:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(group, []byte("root:x:0:\nalice:x:1235:\nwheel:x:10:alice\naudio:x:29:bob,alice\nother:x:30:bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := probeProcess(t)
	p.User = specs.User{Username: "alice", AdditionalGids: []uint32{40}}
	res := mustApply(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{BindPasswd: passwd, BindGroup: group},
	})
	wantStatus(t, "after exec", res.post, "Uid", "1234\t1234\t1234\t1234")
	wantStatus(t, "after exec", res.post, "Gid", "1235\t1235\t1235\t1235")
	wantStatus(t, "after exec", res.post, "Groups", "10 29 40")
	if res.post.Home != "/home/alice" {
		t.Errorf("HOME: got %q, want /home/alice", res.post.Home)
	}
}

func TestApplyKeepsHome(t *testing.T) {
	p := probeProcess(t)
	p.Env = append(p.Env, "HOME=/custom")
	res := mustApply(t, helperRequest{Config: Config{Process: p}})
	if res.post.Home != "/custom" {
		t.Errorf("HOME: got %q, want /custom", res.post.Home)
	}
}

func TestApplyRejectsBadSpecs(t *testing.T) {
	// These fail in prepare, before anything changes, so they run in the
	// test process itself.
	bad := -1
	tests := []struct {
		name  string
		edit  func(c *Config)
		want  string
		setup func(t *testing.T)
	}{
		{"uid -1", func(c *Config) { c.Process.User.UID = 4294967295 }, "uid 4294967295 is out of range (max 2147483647)", nil},
		{"gid", func(c *Config) { c.Process.User.GID = 2147483648 }, "gid 2147483648 is out of range (max 2147483647)", nil},
		{"additional gid", func(c *Config) { c.Process.User.AdditionalGids = []uint32{4294967295} }, "additional gid 4294967295 is out of range", nil},
		{"unknown user", func(c *Config) { c.Process.User.Username = "no-such-user-railcar" }, `resolve user "no-such-user-railcar" in the container`, nil},
		{"unknown cap", func(c *Config) { c.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_FLY"}} }, `process.capabilities.bounding: unknown capability "CAP_FLY"`, nil},
		{"effective not permitted", func(c *Config) {
			c.Process.Capabilities = &specs.LinuxCapabilities{Effective: []string{"CAP_CHOWN"}}
		}, "process.capabilities: effective CAP_CHOWN is not in the permitted set", nil},
		{"ambient not inheritable", func(c *Config) {
			c.Process.Capabilities = &specs.LinuxCapabilities{Permitted: []string{"CAP_CHOWN"}, Ambient: []string{"CAP_CHOWN"}}
		}, "process.capabilities: ambient CAP_CHOWN must also be in the permitted and inheritable sets", nil},
		{"unknown rlimit", func(c *Config) { c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_FOO"}} }, `process.rlimits: unknown type "RLIMIT_FOO"`, nil},
		{"soft above hard", func(c *Config) {
			c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5}}
		}, "process.rlimits: RLIMIT_NOFILE soft limit 10 exceeds hard limit 5", nil},
		{"duplicate rlimit", func(c *Config) {
			c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CORE"}, {Type: "RLIMIT_CORE"}}
		}, "process.rlimits: RLIMIT_CORE given twice", nil},
		{"oom range", func(c *Config) { v := 1001; c.Process.OOMScoreAdj = &v }, "oom_score_adj 1001 is out of range [-1000, 1000]", nil},
		{"personality", func(c *Config) {
			c.Linux = &specs.Linux{Personality: &specs.LinuxPersonality{Domain: "LINUX16"}}
		}, `linux.personality: unknown domain "LINUX16"`, nil},
		{"sched policy", func(c *Config) { c.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_FAST"} }, `process.scheduler: unknown policy "SCHED_FAST"`, nil},
		{"sched flag", func(c *Config) {
			c.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_X"}}
		}, `process.scheduler: unknown flag "SCHED_FLAG_X"`, nil},
		{"ioprio class", func(c *Config) { c.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_X"} }, `process.ioPriority: unknown class "IOPRIO_CLASS_X"`, nil},
		{"ioprio level", func(c *Config) {
			c.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: bad}
		}, "process.ioPriority: priority -1 is out of range [0, 7]", nil},
		{"cpu list", func(c *Config) { c.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0-x"} }, `execCPUAffinity.initial: bad cpu "x" in "0-x"`, nil},
		{"cpu range", func(c *Config) { c.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: "3-1"} }, `execCPUAffinity.final: bad cpu range "3-1" in "3-1"`, nil},
		{"apparmor", func(c *Config) { c.Process.ApparmorProfile = "railcar-test" }, `apparmor profile "railcar-test" requested but AppArmor is not enabled on this host`, needNoAppArmor},
		{"selinux", func(c *Config) { c.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, `selinux label "system_u:system_r:container_t:s0" requested but SELinux is not enabled on this host`, needNoSELinux},
		{"seccomp action", func(c *Config) {
			c.Linux = &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_DANCE"}}
		}, "linux.seccomp: ", needSeccomp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			c := &Config{Process: &specs.Process{Args: []string{"true"}, Cwd: "/"}}
			tc.edit(c)
			_, err := prepare(c)
			if err == nil {
				t.Fatalf("prepare succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error: got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func needNoAppArmor(t *testing.T) {
	if data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.HasPrefix(string(data), "Y") {
		t.Skip("AppArmor is enabled here")
	}
}

func needNoSELinux(t *testing.T) {
	if on, _ := selinuxEnabled(); on {
		t.Skip("SELinux is enabled here")
	}
}

func TestApplyNilProcess(t *testing.T) {
	if err := Apply(&Config{}, nil); err == nil || err.Error() != "process: no process in config" {
		t.Errorf("got %v, want the no-process error", err)
	}
}
