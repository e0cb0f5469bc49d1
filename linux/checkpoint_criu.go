package linux

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	criurpc "github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"
)

// ErrNoCriu is wrapped by the errors of Checkpoint and Restore when the criu
// binary cannot be run.
var ErrNoCriu = errors.New("checkpoint/restore needs criu (https://criu.org), which could not be run")

// criuCall is one `criu swrk` session: one request, any number of
// notifications, one answer.
type criuCall struct {
	path  string // the criu binary ("criu": looked up in $PATH)
	req   *criurpc.CriuReq
	stdio Stdio
	// extra are criu's fds from 4 on (3 is the rpc socket).
	extra []*os.File
	// started runs once criu runs, before the request is sent (restore
	// puts criu in the container's cgroup there).
	started func(pid int) error
	// notify answers criu's notifications (scripts); files are the fds
	// that came with one (orphan-pts-master).
	notify func(n *criurpc.CriuNotify, files []*os.File) error
	// log is the criu log file named in errors ("" for none).
	log string
}

func ptr[T any](v T) *T { return &v }

// criuBinary resolves the criu binary or says clearly that it is missing.
func criuBinary(path string) (string, error) {
	if path == "" {
		path = "criu"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCriu, err)
	}
	return p, nil
}

// criuSwrk runs criu in service-worker mode through the engine's Monitor
// (the shim's reaper owns every wait4) and returns its final answer.
func (e *Engine) criuSwrk(call *criuCall) (*criurpc.CriuResp, error) {
	bin, err := criuBinary(call.path)
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("criu socket: %w", err)
	}
	client := os.NewFile(uintptr(fds[0]), "criu-client")
	server := os.NewFile(uintptr(fds[1]), "criu-server")
	defer client.Close()
	cmd := &exec.Cmd{
		Path:       bin,
		Args:       []string{bin, "swrk", "3"},
		ExtraFiles: append([]*os.File{server}, call.extra...),
	}
	call.stdio.attach(cmd)
	ch, err := e.monitor.Start(cmd)
	server.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCriu, err)
	}
	waited := false
	defer func() {
		if !waited {
			// criu sees EOF on its socket and gives up (a restore kills
			// what it restored).
			client.Close()
			e.monitor.Wait(cmd, ch)
		}
	}()
	fail := func(err error) (*criurpc.CriuResp, error) {
		return nil, criuError(err, call.log)
	}
	if call.started != nil {
		if err := call.started(cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	typ := call.req.GetType()
	data, err := call.req.MarshalVT()
	if err != nil {
		return nil, err
	}
	if _, err := client.Write(data); err != nil {
		return fail(fmt.Errorf("send %s request to criu: %w", typ, err))
	}
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(4*16))
	var resp *criurpc.CriuResp
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(client.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("read from criu: %w", err))
		}
		if n == 0 {
			code, _ := e.monitor.Wait(cmd, ch)
			waited = true
			return fail(fmt.Errorf("criu %s: criu exited (status %d) without an answer", strings.ToLower(typ.String()), code))
		}
		r := &criurpc.CriuResp{}
		if err := r.UnmarshalVT(buf[:n]); err != nil {
			return fail(fmt.Errorf("criu answer: %w", err))
		}
		if !r.GetSuccess() {
			msg := fmt.Sprintf("criu %s failed", strings.ToLower(r.GetType().String()))
			if m := strings.TrimSpace(r.GetCrErrmsg()); m != "" {
				msg += ": " + m
			}
			if errno := r.GetCrErrno(); errno != 0 {
				msg += fmt.Sprintf(" (errno %d: %v)", errno, unix.Errno(errno))
			}
			return fail(errors.New(msg))
		}
		if r.GetType() != criurpc.CriuReqType_NOTIFY {
			resp = r
			break
		}
		files, err := oobFiles(oob[:oobn])
		if err != nil {
			return fail(err)
		}
		var nerr error
		if call.notify != nil {
			nerr = call.notify(r.GetNotify(), files)
		}
		for _, f := range files {
			f.Close()
		}
		if nerr != nil {
			return fail(fmt.Errorf("criu notification %q: %w", r.GetNotify().GetScript(), nerr))
		}
		ack := &criurpc.CriuReq{Type: ptr(criurpc.CriuReqType_NOTIFY), NotifySuccess: ptr(true)}
		data, err := ack.MarshalVT()
		if err != nil {
			return nil, err
		}
		if _, err := client.Write(data); err != nil {
			return fail(fmt.Errorf("answer criu notification: %w", err))
		}
	}
	unix.Shutdown(int(client.Fd()), unix.SHUT_WR)
	code, err := e.monitor.Wait(cmd, ch)
	waited = true
	if err != nil {
		return fail(fmt.Errorf("wait for criu: %w", err))
	}
	// A pre-dump's criu waits for the next request and is stopped by our
	// closing the socket: its status means nothing.
	if code != 0 && typ != criurpc.CriuReqType_PRE_DUMP {
		return fail(fmt.Errorf("criu %s: criu exited with status %d", strings.ToLower(typ.String()), code))
	}
	return resp, nil
}

func oobFiles(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("criu control message: %w", err)
	}
	var files []*os.File
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "criu-fd"))
		}
	}
	return files, nil
}

// criuError names the criu log and quotes its last errors.
func criuError(err error, log string) error {
	if log == "" {
		return err
	}
	quote := criuLogErrors(log, 3)
	if len(quote) == 0 {
		return fmt.Errorf("%w (criu log: %s)", err, log)
	}
	return fmt.Errorf("%w (criu log: %s: %s)", err, log, strings.Join(quote, " | "))
}

// criuLogErrors returns the last n lines of a criu log that report an error.
func criuLogErrors(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line := s.Text()
		if strings.Contains(line, "Error") || strings.Contains(line, "error") {
			out = append(out, strings.TrimSpace(line))
			if len(out) > n {
				out = out[1:]
			}
		}
	}
	return out
}

// criuVersion asks criu for its version as major*10000+minor*100+sublevel.
func (e *Engine) criuVersion(path string) (int, error) {
	resp, err := e.criuSwrk(&criuCall{path: path, req: &criurpc.CriuReq{Type: ptr(criurpc.CriuReqType_VERSION)}})
	if err != nil {
		return 0, err
	}
	v := resp.GetVersion()
	if v == nil {
		return 0, errors.New("criu did not tell its version")
	}
	return int(v.GetMajorNumber())*10000 + int(v.GetMinorNumber())*100 + int(v.GetSublevel()), nil
}

// criuFeatures asks criu whether it and the kernel support the features
// set in want, and names the ones missing.
func (e *Engine) criuFeatures(path string, want *criurpc.CriuFeatures) error {
	resp, err := e.criuSwrk(&criuCall{path: path, req: &criurpc.CriuReq{
		Type: ptr(criurpc.CriuReqType_FEATURE_CHECK), Features: want}})
	if err != nil {
		return fmt.Errorf("criu feature check: %w", err)
	}
	got := resp.GetFeatures()
	var missing []string
	if want.GetMemTrack() && !got.GetMemTrack() {
		missing = append(missing, "memory tracking (pre-dump)")
	}
	if want.GetLazyPages() && !got.GetLazyPages() {
		missing = append(missing, "lazy pages")
	}
	if len(missing) > 0 {
		return fmt.Errorf("criu or the kernel lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// criuLogPath is where criu writes logName: the work directory when there
// is one, else the image directory.
func criuLogPath(image, work, logName string) string {
	if work != "" {
		return filepath.Join(work, logName)
	}
	return filepath.Join(image, logName)
}
