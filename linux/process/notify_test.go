//go:build cgo && seccomp

package process

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// listen receives the notify fd over sock and answers every notification
// with errno; it reports the syscalls it saw on the returned channel when
// the filter goes away.
func listen(t *testing.T, sock *os.File, errno unix.Errno) <-chan []string {
	seen := make(chan []string, 1)
	go func() {
		var names []string
		defer func() { seen <- names }()
		buf := make([]byte, 1)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
		if err != nil {
			t.Errorf("receive notify fd: %v", err)
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Errorf("receive notify fd: %d messages, %v", len(msgs), err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Errorf("receive notify fd: %v %v", fds, err)
			return
		}
		fd := libseccomp.ScmpFd(fds[0])
		defer unix.Close(fds[0])
		for {
			req, err := libseccomp.NotifReceive(fd)
			if err != nil {
				return // the filter's last user is gone
			}
			name, _ := req.Data.Syscall.GetName()
			names = append(names, name)
			resp := &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(errno)}
			if err := libseccomp.NotifRespond(fd, resp); err != nil {
				t.Errorf("respond: %v", err)
				return
			}
		}
	}()
	return seen
}

func TestApplySeccompNotify(t *testing.T) {
	for _, nnp := range []bool{false, true} {
		t.Run(fmt.Sprintf("noNewPrivileges=%v", nnp), func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours := os.NewFile(uintptr(fds[0]), "listener")
			theirs := os.NewFile(uintptr(fds[1]), "helper")
			defer ours.Close()
			seen := listen(t, ours, unix.EXDEV)

			dir := filepath.Join(t.TempDir(), "made")
			p := probeProcess(t)
			p.NoNewPrivileges = nnp
			p.Env = append(p.Env, probeMkdir+"="+dir)
			res := mustApply(t, helperRequest{
				Config: Config{Process: p, Linux: &specs.Linux{Seccomp: seccompMkdir(specs.ActNotify, 0)}},
				Setup:  setup{SendNotify: true},
			}, theirs)
			theirs.Close()

			if res.post.MkdirErrno != int(unix.EXDEV) {
				t.Errorf("mkdir errno: got %d, want %d (EXDEV, the listener's answer)", res.post.MkdirErrno, unix.EXDEV)
			}
			names := <-seen
			if len(names) == 0 || names[len(names)-1] != "mkdirat" {
				t.Errorf("listener saw %v, want mkdirat last", names)
			}
		})
	}
}
