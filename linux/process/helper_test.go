package process

// The test binary doubles as the container init and as the workload: a test
// re-executes it with helperEnv=apply, the child sets itself up like an init
// (setup), calls Apply, reports what its thread looks like, then LateSeccomp,
// LookPath and execve of process.args, which is usually this binary again
// with helperEnv=probe, reporting what the workload sees.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	helperEnv    = "RAILCAR_PROCESS_TEST_HELPER"
	helperConfig = "RAILCAR_PROCESS_TEST_CONFIG"
	probeMkdir   = "RAILCAR_PROCESS_TEST_MKDIR"
)

// setup is what the helper does before Apply, standing in for the parts of
// the init that are not this package's.
type setup struct {
	// DropCaps are removed from every set of the helper, to stand for a
	// host whose bounding set lacks them.
	DropCaps []string
	// BindPasswd and BindGroup are bind-mounted over /etc/passwd and
	// /etc/group (the helper has its own mount namespace).
	BindPasswd, BindGroup string
	// OverOOM is a procfs file bind-mounted over /proc/self/oom_score_adj,
	// as a container that shares volumes could (CVE-2025-52881).
	OverOOM string
	// LeakDir is opened without O_CLOEXEC; "{fd}" in Process.Cwd becomes
	// its number. Then the helper chroots into Chroot (with /proc).
	LeakDir, Chroot string
	// Umask is set before Apply when not zero.
	Umask int
	// OOMScoreAdj is written before Apply when not nil.
	OOMScoreAdj *int
	// SendNotify sends the seccomp notify fd over the socket at fd 3.
	SendNotify bool
	// UserNS starts the helper in a new user namespace mapping ids
	// 0-65535 to themselves, with setgroups denied.
	UserNS bool
}

type helperRequest struct {
	Config Config
	Setup  setup
}

// report is one line of helper or probe output.
type report struct {
	Err         string            `json:"err,omitempty"`
	Status      map[string]string `json:"status,omitempty"`
	Umask       int               `json:"umask"`
	Cwd         string            `json:"cwd,omitempty"`
	Personality string            `json:"personality,omitempty"`
	Machine     string            `json:"machine,omitempty"`
	OOMScoreAdj string            `json:"oomScoreAdj,omitempty"`
	SchedPolicy uint32            `json:"schedPolicy"`
	SchedNice   int32             `json:"schedNice"`
	IOPrio      int               `json:"ioprio"`
	CPUs        []int             `json:"cpus,omitempty"`
	Keyring     string            `json:"keyring,omitempty"`
	Home        string            `json:"home,omitempty"`
	CoreLimit   [2]uint64         `json:"coreLimit"`
	MkdirErrno  int               `json:"mkdirErrno"`
}

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "apply":
		runApplyHelper()
		os.Exit(1) // not reached: runApplyHelper execs or exits
	case "probe":
		json.NewEncoder(os.Stdout).Encode(observe("self"))
		os.Exit(0)
	}
	code := m.Run()
	if exeDir != "" {
		os.RemoveAll(exeDir)
	}
	os.Exit(code)
}

func runApplyHelper() {
	fail := func(err error) {
		json.NewEncoder(os.Stdout).Encode(report{Err: err.Error()})
		os.Exit(0)
	}
	data, err := os.ReadFile(os.Getenv(helperConfig))
	if err != nil {
		fail(err)
	}
	var req helperRequest
	if err := json.Unmarshal(data, &req); err != nil {
		fail(err)
	}
	runtime.LockOSThread()
	if err := doSetup(&req); err != nil {
		fail(fmt.Errorf("setup: %w", err))
	}
	var notify func(*os.File) error
	if req.Setup.SendNotify {
		sock := os.NewFile(3, "notify-socket")
		notify = func(f *os.File) error {
			return unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
		}
	}
	c := &req.Config
	if err := Apply(c, notify); err != nil {
		fail(err)
	}
	json.NewEncoder(os.Stdout).Encode(observe("thread-self"))
	if err := LateSeccomp(c, notify); err != nil {
		fail(err)
	}
	path, err := LookPath(c.Process)
	if err != nil {
		fail(err)
	}
	fail(syscall.Exec(path, c.Process.Args, c.Process.Env))
}

func doSetup(req *helperRequest) error {
	s := &req.Setup
	if len(s.DropCaps) > 0 {
		c, err := capability.NewPid2(0)
		if err != nil {
			return err
		}
		if err := c.Load(); err != nil {
			return err
		}
		for _, n := range s.DropCaps {
			c.Unset(capability.CAPS|capability.BOUNDS, capNames()[n])
		}
		if err := c.Apply(capability.CAPS | capability.BOUNDS); err != nil {
			return err
		}
	}
	if s.BindPasswd != "" || s.Chroot != "" || s.OverOOM != "" {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return err
		}
	}
	for src, dst := range map[string]string{s.BindPasswd: "/etc/passwd", s.BindGroup: "/etc/group"} {
		if src == "" {
			continue
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dst, err)
		}
	}
	if s.OverOOM != "" {
		if err := unix.Mount(s.OverOOM, "/proc/self/oom_score_adj", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind over oom_score_adj: %w", err)
		}
	}
	if s.LeakDir != "" {
		fd, err := unix.Open(s.LeakDir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		req.Config.Process.Cwd = strings.ReplaceAll(req.Config.Process.Cwd, "{fd}", strconv.Itoa(fd))
	}
	if s.Chroot != "" {
		proc := filepath.Join(s.Chroot, "proc")
		if err := os.MkdirAll(proc, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("/proc", proc, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := unix.Chroot(s.Chroot); err != nil {
			return err
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	if s.Umask != 0 {
		unix.Umask(s.Umask)
	}
	if s.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*s.OOMScoreAdj)), 0); err != nil {
			return err
		}
	}
	return nil
}

// observe reports the process attributes of /proc/<who>.
func observe(who string) report {
	var r report
	r.Status = make(map[string]string)
	if data, err := os.ReadFile("/proc/" + who + "/status"); err == nil {
		for line := range strings.Lines(string(data)) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			r.Status[k] = strings.TrimSpace(v)
		}
	}
	r.Umask = unix.Umask(0)
	unix.Umask(r.Umask)
	r.Cwd, _ = unix.Getwd()
	if data, err := os.ReadFile("/proc/" + who + "/personality"); err == nil {
		r.Personality = strings.TrimSpace(string(data))
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		r.Machine = unix.ByteSliceToString(uts.Machine[:])
	}
	if data, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		r.OOMScoreAdj = strings.TrimSpace(string(data))
	}
	if a, err := unix.SchedGetAttr(0, 0); err == nil {
		r.SchedPolicy, r.SchedNice = a.Policy, a.Nice
	}
	prio, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if errno == 0 {
		r.IOPrio = int(prio)
	}
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		for cpu := 0; cpu < 1024; cpu++ {
			if set.IsSet(cpu) {
				r.CPUs = append(r.CPUs, cpu)
			}
		}
	}
	r.Keyring, _ = unix.KeyctlString(unix.KEYCTL_DESCRIBE, unix.KEY_SPEC_SESSION_KEYRING)
	r.Home = os.Getenv("HOME")
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_CORE, &lim) == nil {
		r.CoreLimit = [2]uint64{lim.Cur, lim.Max}
	}
	if dir := os.Getenv(probeMkdir); dir != "" {
		if err := unix.Mkdir(dir, 0o755); err != nil {
			if errno, ok := err.(syscall.Errno); ok {
				r.MkdirErrno = int(errno)
			} else {
				r.MkdirErrno = -1
			}
		}
	}
	return r
}

var (
	exeOnce sync.Once
	exeDir  string
	exePath string
	exeErr  error
)

// testExe is a copy of the test binary that any user may execute (go test
// builds it in a directory only root can enter).
func testExe(t *testing.T) string {
	t.Helper()
	exeOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			exeErr = err
			return
		}
		if exeDir, exeErr = os.MkdirTemp("", "railcar-process-test"); exeErr != nil {
			return
		}
		if exeErr = os.Chmod(exeDir, 0o755); exeErr != nil {
			return
		}
		exePath = filepath.Join(exeDir, "process.test")
		in, err := os.Open(self)
		if err != nil {
			exeErr = err
			return
		}
		defer in.Close()
		out, err := os.OpenFile(exePath, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			exeErr = err
			return
		}
		if _, exeErr = io.Copy(out, in); exeErr != nil {
			return
		}
		exeErr = out.Close()
	})
	if exeErr != nil {
		t.Fatalf("copy test binary: %v", exeErr)
	}
	return exePath
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// probeProcess is a process whose workload is the probe.
func probeProcess(t *testing.T) *specs.Process {
	return &specs.Process{
		Args: []string{testExe(t)},
		Env:  []string{helperEnv + "=probe", "PATH=/usr/bin:/bin"},
		Cwd:  "/",
	}
}

type helperResult struct {
	applyErr string // Apply's (or setup's) error
	pre      report // the helper's thread right after Apply
	post     report // the probe, after execve
	output   string // everything the helper and its workload printed
}

// runHelper runs Apply in a child per req and collects its reports.
func runHelper(t *testing.T, req helperRequest, extra ...*os.File) helperResult {
	t.Helper()
	needRoot(t)
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testExe(t))
	cmd.Env = []string{helperEnv + "=apply", helperConfig + "=" + cfg}
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if req.Setup.UserNS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	res := helperResult{output: string(out)}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for i := 0; sc.Scan(); i++ {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break // the workload is not the probe
		}
		switch {
		case r.Err != "":
			res.applyErr = r.Err
		case i == 0:
			res.pre = r
		default:
			res.post = r
		}
	}
	return res
}

// mustApply runs the helper and fails the test if Apply failed.
func mustApply(t *testing.T, req helperRequest, extra ...*os.File) helperResult {
	t.Helper()
	res := runHelper(t, req, extra...)
	if res.applyErr != "" {
		t.Fatalf("Apply: %s", res.applyErr)
	}
	return res
}

// wantApplyError runs the helper and checks Apply failed with want in its
// message.
func wantApplyError(t *testing.T, req helperRequest, want string) {
	t.Helper()
	res := runHelper(t, req)
	if res.applyErr == "" {
		t.Fatalf("Apply succeeded, want an error containing %q\noutput: %s", want, res.output)
	}
	if !strings.Contains(res.applyErr, want) {
		t.Errorf("Apply error: got %q, want it to contain %q", res.applyErr, want)
	}
}

// capMask is the /proc/<pid>/status rendering of a set of capabilities.
func capMask(t *testing.T, names ...string) string {
	t.Helper()
	var m uint64
	for _, n := range names {
		c, ok := capNames()[n]
		if !ok {
			t.Fatalf("unknown capability %s", n)
		}
		m |= 1 << uint(c)
	}
	return fmt.Sprintf("%016x", m)
}
