package security

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerProfile is a seccomp profile in docker's format: an archMap,
// defaultErrnoRet, and rules that apply only with (includes) or without
// (excludes) some capabilities.
type dockerProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
	ArchMap         []struct {
		Arch    specs.Arch   `json:"architecture"`
		SubArch []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Includes *struct {
			Caps []string `json:"caps"`
		} `json:"includes"`
		Excludes *struct {
			Caps []string `json:"caps"`
		} `json:"excludes"`
	} `json:"syscalls"`
}

// loadDockerProfile turns testdata/docker-default.json into the OCI
// profile docker would hand a runtime for a process with caps on amd64.
func loadDockerProfile(t testing.TB, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "docker-default.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p dockerProfile
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	s := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet}
	for _, a := range p.ArchMap {
		if a.Arch == specs.ArchX86_64 {
			s.Architectures = append([]specs.Arch{a.Arch}, a.SubArch...)
		}
	}
	has := func(want []string) bool {
		for _, c := range want {
			if !slices.Contains(caps, c) {
				return false
			}
		}
		return true
	}
	for _, r := range p.Syscalls {
		if r.Includes != nil && !has(r.Includes.Caps) {
			continue
		}
		if r.Excludes != nil && len(r.Excludes.Caps) > 0 && has(r.Excludes.Caps) {
			continue
		}
		s.Syscalls = append(s.Syscalls, r.LinuxSyscall)
	}
	return s
}

// syscallsBundle is a bundle whose workload reports the probe's syscalls.
func syscallsBundle(t testing.TB) *bundle {
	return newBundle(t, "/probe", "syscalls")
}

// TestSeccompDefaultProfiles: containerd's default profile and docker's
// (in docker's format) stop unshare and keyctl with EPERM and let
// ordinary syscalls through; with CAP_SYS_ADMIN, unshare is allowed.
func TestSeccompDefaultProfiles(t *testing.T) {
	runtimes(t, func(e *env) {
		for _, name := range []string{"containerd", "docker"} {
			for _, admin := range []bool{false, true} {
				b := syscallsBundle(t)
				if admin {
					c := b.spec.Process.Capabilities
					c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
					c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
					c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
				}
				if name == "containerd" {
					b.spec.Linux.Seccomp = seccomp.DefaultProfile(b.spec)
				} else {
					b.spec.Linux.Seccomp = loadDockerProfile(t, b.spec.Process.Capabilities.Bounding)
				}
				b.save(t)
				what := fmt.Sprintf("%s profile, CAP_SYS_ADMIN %v", name, admin)
				res := e.runContainer(b)
				if res.code != 0 {
					e.failf("%s: %v", what, res)
					continue
				}
				want := map[string]string{"unshare": "EPERM", "keyctl": "EPERM", "mkdirat": "ok"}
				if admin {
					want["unshare"] = "ok"
				}
				for k, v := range want {
					if got := field(res.stdout, k); got != v {
						e.vulnf("%s: %s = %q, want %q", what, k, got, v)
					}
				}
				if field(res.stdout, "getppid") != "0" {
					e.failf("%s: getppid = %q, want 0 (the init's parent is outside its pid namespace)", what, field(res.stdout, "getppid"))
				}
			}
		}
	})
}

// TestSeccompErrnoRet: a rule's errnoRet, and the profile's
// defaultErrnoRet, are what the workload gets.
func TestSeccompErrnoRet(t *testing.T) {
	runtimes(t, func(e *env) {
		exdev, emlink := uint(unix.EXDEV), uint(unix.EMLINK)
		b := syscallsBundle(t)
		b.spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: &exdev},
				{Names: []string{"keyctl"}, Action: specs.ActErrno}, // no errnoRet: EPERM
			},
		}
		b.save(t)
		res := e.runContainer(b)
		if res.code != 0 {
			e.fatalf("%v", res)
		}
		for k, v := range map[string]string{"mkdirat": "EXDEV", "keyctl": "EPERM", "unshare": "EPERM"} {
			if k == "unshare" {
				v = "EPERM" // no CAP_SYS_ADMIN
			}
			if got := field(res.stdout, k); got != v {
				e.failf("%s = %q, want %q", k, got, v)
			}
		}

		// defaultErrnoRet: everything the profile does not allow fails
		// with EMLINK.
		b.renew(t)
		prof := seccomp.DefaultProfile(b.spec)
		prof.DefaultErrnoRet = &emlink
		b.spec.Linux.Seccomp = prof
		b.save(t)
		res = e.runContainer(b)
		if res.code != 0 {
			e.fatalf("%v", res)
		}
		if got := field(res.stdout, "keyctl"); got != "EMLINK" {
			e.failf("keyctl under defaultErrnoRet EMLINK = %q", got)
		}
	})
}

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and struct seccomp_notif_resp.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifyListener is a linux.seccomp.listenerPath: it receives the notify
// fd with the container process state, and answers every notification
// with val.
type notifyListener struct {
	path  string
	state chan specs.ContainerProcessState
	seen  chan int32
}

func newNotifyListener(t testing.TB, val int64) *notifyListener {
	t.Helper()
	l := &notifyListener{path: filepath.Join(t.TempDir(), "seccomp.sock"),
		state: make(chan specs.ContainerProcessState, 4), seen: make(chan int32, 64)}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: l.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4*4))
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			conn.Close()
			if err != nil {
				continue
			}
			var st specs.ContainerProcessState
			json.Unmarshal(buf[:n], &st)
			l.state <- st
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			if len(msgs) != 1 {
				continue
			}
			fds, _ := unix.ParseUnixRights(&msgs[0])
			if len(fds) != 1 {
				continue
			}
			go l.answer(fds[0], val)
		}
	}()
	return l
}

func (l *notifyListener) answer(fd int, val int64) {
	defer unix.Close(fd)
	for {
		var req seccompNotif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
			if e == unix.EINTR {
				continue
			}
			return // the filter's last user is gone
		}
		select {
		case l.seen <- req.Nr:
		default:
		}
		resp := seccompNotifResp{ID: req.ID, Val: val}
		unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// TestSeccompNotify: with SCMP_ACT_NOTIFY, the runtime sends the listener
// at linux.seccomp.listenerPath the notify fd and the container process
// state (as runc does); the listener's answer is what the workload's
// syscall returns.
func TestSeccompNotify(t *testing.T) {
	runtimes(t, func(e *env) {
		l := newNotifyListener(t, 4242)
		b := syscallsBundle(t)
		b.spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction:    specs.ActAllow,
			ListenerPath:     l.path,
			ListenerMetadata: "railcar-security",
			Syscalls:         []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}},
		}
		b.save(t)
		res := e.runContainer(b)
		if res.code != 0 {
			e.fatalf("%v", res)
		}
		if got := field(res.stdout, "getppid"); got != "4242" {
			e.failf("getppid = %q, want 4242 (the listener's answer)", got)
		}
		select {
		case st := <-l.state:
			if st.State.ID != b.id || st.Pid <= 0 || st.Metadata != "railcar-security" ||
				!slices.Contains(st.Fds, specs.SeccompFdName) || !strings.HasPrefix(st.Version, "1.") {
				e.failf("container process state: %+v", st)
			}
		default:
			e.failf("the listener got no container process state")
		}
		select {
		case nr := <-l.seen:
			if nr != unix.SYS_GETPPID {
				e.failf("notified syscall %d, want getppid (%d)", nr, unix.SYS_GETPPID)
			}
		default:
			e.failf("the listener saw no notification")
		}
	})
}
