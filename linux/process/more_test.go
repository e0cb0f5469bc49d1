package process

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func seccompMkdir(action specs.LinuxSeccompAction, errno uint) *specs.LinuxSeccomp {
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names:  []string{"mkdir", "mkdirat"},
			Action: action,
		}},
	}
	if errno != 0 {
		sc.Syscalls[0].ErrnoRet = &errno
	}
	return sc
}

// needSeccomp skips tests of filters in a test binary built without
// libseccomp (TestSeccompSupport checks such a binary refuses filters).
func needSeccomp(t *testing.T) {
	t.Helper()
	if !seccompBuilt {
		t.Skip("seccomp support is not compiled in: test with -tags seccomp")
	}
}

func TestSeccompSupport(t *testing.T) {
	c := &Config{
		Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Linux:   &specs.Linux{Seccomp: seccompMkdir(specs.ActErrno, 42)},
	}
	_, err := prepare(c)
	if seccompBuilt {
		if err != nil {
			t.Fatalf("prepare: %v", err)
		}
		if c.seccomp == nil || len(c.seccomp.Syscalls) != 2 {
			t.Fatalf("filter converted from the spec's profile: got %+v, want mkdir and mkdirat rules", c.seccomp)
		}
		return
	}
	if err != errNoSeccomp {
		t.Fatalf("without seccomp support: got %v, want %v", err, errNoSeccomp)
	}
}

func TestApplySeccompErrno(t *testing.T) {
	needSeccomp(t)
	for _, nnp := range []bool{false, true} {
		t.Run(fmt.Sprintf("noNewPrivileges=%v", nnp), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "made")
			p := probeProcess(t)
			p.NoNewPrivileges = nnp
			p.Env = append(p.Env, probeMkdir+"="+dir)
			res := mustApply(t, helperRequest{Config: Config{
				Process: p,
				Linux:   &specs.Linux{Seccomp: seccompMkdir(specs.ActErrno, 42)},
			}})
			if res.post.MkdirErrno != 42 {
				t.Errorf("mkdir errno under the filter: got %d, want 42", res.post.MkdirErrno)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("mkdir succeeded under the filter")
			}
			wantStatus(t, "after exec", res.post, "Seccomp", "2")
			// Without no_new_privs the filter is loaded in Apply (it
			// needs CAP_SYS_ADMIN); with it, as late as possible.
			want := "2"
			if nnp {
				want = "0"
			}
			wantStatus(t, "after Apply", res.pre, "Seccomp", want)
		})
	}
}

func TestApplySeccompNotifyNeedsListener(t *testing.T) {
	needSeccomp(t)
	p := probeProcess(t)
	wantApplyError(t, helperRequest{Config: Config{
		Process: p,
		Linux:   &specs.Linux{Seccomp: seccompMkdir(specs.ActNotify, 0)},
	}}, "seccomp profile uses SCMP_ACT_NOTIFY but no listener was given")
}

func TestApplySetgroupsDenied(t *testing.T) {
	p := probeProcess(t)
	p.User = specs.User{UID: testUID, GID: testGID, AdditionalGids: []uint32{2000}}
	res := mustApply(t, helperRequest{
		Config: Config{Process: p, ContainerID: "userns", Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}},
		}},
		Setup: setup{UserNS: true},
	})
	wantStatus(t, "after exec", res.post, "Uid", fmt.Sprintf("%d\t%d\t%d\t%d", testUID, testUID, testUID, testUID))
	if strings.Contains(res.post.Status["Groups"], "2000") {
		t.Errorf("groups: got %q although setgroups is denied", res.post.Status["Groups"])
	}
	// In a user namespace the session keyring is searchable by "other".
	fields := strings.Split(res.post.Keyring, ";")
	if len(fields) < 5 || fields[4] != "_ses.userns" {
		t.Fatalf("session keyring: got %q, want _ses.userns", res.post.Keyring)
	}
	if perm, err := strconv.ParseUint(fields[3], 16, 32); err != nil || perm&keyOthSearch == 0 {
		t.Errorf("session keyring permissions %s lack other-search", fields[3])
	}
}

func TestApplyUnmappedUID(t *testing.T) {
	p := probeProcess(t)
	p.User = specs.User{UID: 70000, GID: 0}
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{UserNS: true},
	}, "setresuid 70000: uid is not mapped in the container's user namespace")
}

func TestFinalCPUAffinity(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	p := &specs.Process{ExecCPUAffinity: &specs.CPUAffinity{Initial: "0", Final: "0"}}
	if err := FinalCPUAffinity(cmd.Process.Pid, p); err != nil {
		t.Fatal(err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(cmd.Process.Pid, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(0) {
		t.Errorf("affinity: got %d cpus, want only cpu 0", set.Count())
	}

	for _, p := range []*specs.Process{nil, {}, {ExecCPUAffinity: &specs.CPUAffinity{Initial: "0"}}} {
		if err := FinalCPUAffinity(cmd.Process.Pid, p); err != nil {
			t.Errorf("FinalCPUAffinity without final: %v", err)
		}
	}
	if err := FinalCPUAffinity(cmd.Process.Pid, &specs.Process{ExecCPUAffinity: &specs.CPUAffinity{Final: "x"}}); err == nil {
		t.Error("FinalCPUAffinity accepted a bad cpu list")
	}
}

func TestParseCPUSet(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{in: "", want: nil},
		{in: "0-2,5", want: []int{0, 1, 2, 5}},
		{in: " 1 , 3 ,", want: []int{1, 3}},
		{in: "1023", want: []int{1023}},
		{in: "1024", err: true},
		{in: "2-1", err: true},
		{in: "-1", err: true},
		{in: ",", err: true},
	} {
		set, err := parseCPUSet(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("parseCPUSet(%q) succeeded, want an error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCPUSet(%q): %v", tc.in, err)
			continue
		}
		var got []int
		for cpu := 0; set != nil && cpu < 1024; cpu++ {
			if set.IsSet(cpu) {
				got = append(got, cpu)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("parseCPUSet(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	write := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir1, "noexec"), 0o644)
	write(filepath.Join(dir2, "noexec"), 0o755)
	write(filepath.Join(dir1, "prog"), 0o755)
	write(filepath.Join(dir2, "prog"), 0o755)
	if err := os.Mkdir(filepath.Join(dir1, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := "PATH=/nonexistent:" + dir1 + ":" + dir2
	for _, tc := range []struct {
		args []string
		env  []string
		want string
		err  string
	}{
		{args: []string{"prog", "x"}, env: []string{path}, want: dir1 + "/prog"},
		{args: []string{"noexec"}, env: []string{path}, want: dir2 + "/noexec"},
		{args: []string{"adir"}, env: []string{path}, err: `exec: "adir": executable file not found in $PATH`},
		{args: []string{"foo"}, env: []string{path}, err: `exec: "foo": executable file not found in $PATH`},
		{args: []string{"prog"}, env: []string{"PATH=/nonexistent", path}, want: dir1 + "/prog"},
		{args: []string{"prog"}, env: nil, err: `exec: "prog": executable file not found in $PATH`},
		{args: []string{dir2 + "/prog"}, env: nil, want: dir2 + "/prog"},
		{args: []string{dir1 + "/noexec"}, env: []string{path}, err: `exec: "` + dir1 + `/noexec": permission denied`},
		{args: []string{dir1 + "/missing"}, env: nil, err: `exec: "` + dir1 + `/missing": stat ` + dir1 + `/missing: no such file or directory`},
		{args: nil, err: "process.args is empty"},
	} {
		got, err := LookPath(&specs.Process{Args: tc.args, Env: tc.env})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("LookPath(%q): got %q, %v; want error %q", tc.args, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LookPath(%q): got %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("bob:x:1000:\nstaff:x:50:bob\n"), 0o644)
	empty := t.TempDir()

	for _, tc := range []struct {
		name string
		root string
		user specs.User
		want execUser
		err  string
	}{
		{"numeric with entry", root, specs.User{UID: 1000, GID: 7, AdditionalGids: []uint32{9}}, execUser{uid: 1000, gid: 7, groups: []int{9}, home: "/home/bob"}, ""},
		{"numeric without entry", root, specs.User{UID: 4242, GID: 4242}, execUser{uid: 4242, gid: 4242, home: "/"}, ""},
		{"no passwd file", empty, specs.User{UID: 1000, GID: 1000}, execUser{uid: 1000, gid: 1000, home: "/"}, ""},
		{"username", root, specs.User{Username: "bob", AdditionalGids: []uint32{9}}, execUser{uid: 1000, gid: 1000, groups: []int{50, 9}, home: "/home/bob"}, ""},
		{"unknown username", root, specs.User{Username: "carol"}, execUser{}, `resolve user "carol" in the container: unable to find user carol`},
		{"username without passwd", empty, specs.User{Username: "bob"}, execUser{}, `resolve user "bob" in the container`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveUser(&tc.user, tc.root)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.uid != tc.want.uid || got.gid != tc.want.gid || got.home != tc.want.home || !slices.Equal(got.groups, tc.want.groups) {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestWithHome(t *testing.T) {
	for _, tc := range []struct {
		env, want []string
	}{
		{[]string{"A=1"}, []string{"A=1", "HOME=/h"}},
		{[]string{"HOME=/x", "A=1"}, []string{"HOME=/x", "A=1"}},
		{[]string{"HOME=", "A=1"}, []string{"A=1", "HOME=/h"}},
		{nil, []string{"HOME=/h"}},
	} {
		if got := withHome(tc.env, "/h"); !slices.Equal(got, tc.want) {
			t.Errorf("withHome(%q): got %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestApplyCwdOnlyTheUserMayEnter(t *testing.T) {
	// Without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH the runtime cannot
	// enter a 0700 directory of the container user; Apply enters it after
	// the user change.
	dir := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, testUID, testGID); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := probeProcess(t)
	p.Cwd = dir
	p.User = specs.User{UID: testUID, GID: testGID}
	res := mustApply(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{DropCaps: []string{"CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"}},
	})
	if res.post.Cwd != dir {
		t.Errorf("cwd: got %q, want %q", res.post.Cwd, dir)
	}
}

func TestApplySchedulerNeedsSysNice(t *testing.T) {
	p := probeProcess(t)
	p.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 10}
	wantApplyError(t, helperRequest{
		Config: Config{Process: p},
		Setup:  setup{DropCaps: []string{"CAP_SYS_NICE"}},
	}, "set scheduler (policy 1, nice 0, priority 10): needs CAP_SYS_NICE, which is not in this host's capability bounding set")
}

func TestApplyRlimitAboveNrOpen(t *testing.T) {
	ceiling, ok := nrOpen()
	if !ok {
		t.Skip("no /proc/sys/fs/nr_open")
	}
	p := probeProcess(t)
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: ceiling + 1}}
	wantApplyError(t, helperRequest{Config: Config{Process: p}},
		fmt.Sprintf("set RLIMIT_NOFILE to 1024/%d: the hard limit exceeds the kernel's fs.nr_open (%d)", ceiling+1, ceiling))
}
