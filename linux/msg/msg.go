// Package msg is the message protocol between railcar (or the shim) and a
// container's init once the Go runtime runs in the init: one JSON object per
// SOCK_SEQPACKET datagram, with file descriptors as SCM_RIGHTS.
//
//	parent                                    init (package initproc)
//	------                                    -----------------------
//	Config{spec, rootfs, process, ...} ---->  rootfs, sysctl, hostname, console
//	(console master forwarded)         <----  Console + pty master fd
//	run prestart/createRuntime/        <----  Ready
//	createContainer hooks
//	                                   ---->  Continue
//	(notify fd forwarded to listener)  <----  Seccomp + notify fd
//	create returns (init blocks on     <----  Applied (user, caps, ... done)
//	the exec fifo until start)
//	                                   <----  Error{text} at any point
//
// For exec there is no Ready/Continue: the parent waits for EOF (the socket
// is close-on-exec, so EOF means the process has exec'd) or an Error.
package msg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Kinds of message.
const (
	KindConfig   = "config"
	KindConsole  = "console"
	KindReady    = "ready"
	KindContinue = "continue"
	KindSeccomp  = "seccomp"
	KindApplied  = "applied"
	KindError    = "error"
)

// maxMsg bounds one datagram; configs are far smaller.
const maxMsg = 4 << 20

// Message is one datagram.
type Message struct {
	Kind  string          `json:"kind"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Conn is one end of the socket.
type Conn struct{ f *os.File }

// New wraps f.
func New(f *os.File) *Conn { return &Conn{f: f} }

// Pair returns a connected SOCK_SEQPACKET pair, both close-on-exec.
func Pair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "init-parent"), os.NewFile(uintptr(fds[1]), "init-child"), nil
}

// File returns the underlying file.
func (c *Conn) File() *os.File { return c.f }

// Close closes the connection.
func (c *Conn) Close() error { return c.f.Close() }

// SendRaw sends b as one datagram with optional fds.
func (c *Conn) SendRaw(b []byte, fds ...*os.File) error {
	var oob []byte
	if len(fds) > 0 {
		ints := make([]int, len(fds))
		for i, f := range fds {
			ints[i] = int(f.Fd())
		}
		oob = unix.UnixRights(ints...)
	}
	for {
		err := unix.Sendmsg(int(c.f.Fd()), b, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// RecvRaw receives one datagram and the fds that came with it. io.EOF means
// the peer closed its end.
func (c *Conn) RecvRaw() ([]byte, []*os.File, error) {
	// The datagram's length first (MSG_PEEK|MSG_TRUNC returns all of it on
	// a SOCK_SEQPACKET socket; without a control buffer no fd is taken),
	// so that not every message, several per exec, costs a zeroed buffer
	// of maxMsg.
	size, reset := 0, false
	for {
		n, _, _, _, err := unix.Recvmsg(int(c.f.Fd()), nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECONNRESET && !reset {
			// The peer closed with data of ours unread. The kernel
			// reports that before the datagrams still queued for us,
			// the peer's last words (an Error) among them, and
			// forgets it once reported: read on.
			reset = true
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		size = min(n, maxMsg)
		break
	}
	buf := make([]byte, size)
	// Room for as many fds as one message can carry (SCM_MAX_FD): a config
	// brings one per bind mount of a container with a user namespace.
	oob := make([]byte, unix.CmsgSpace(4*253))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECONNRESET && !reset {
			// The peer went between the peek and this read.
			reset = true
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		var files []*os.File
		if oobn > 0 {
			scms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, nil, err
			}
			for _, scm := range scms {
				fds, err := unix.ParseUnixRights(&scm)
				if err != nil {
					return nil, nil, err
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "received"))
				}
			}
		}
		if n == 0 && len(files) == 0 {
			return nil, nil, io.EOF
		}
		return buf[:n], files, nil
	}
}

// Send sends a message of kind with data marshalled as JSON.
func (c *Conn) Send(kind string, data any, fds ...*os.File) error {
	m := Message{Kind: kind}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		m.Data = b
	}
	b, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	return c.SendRaw(b, fds...)
}

// SendError reports err to the peer.
func (c *Conn) SendError(err error) error {
	b, _ := json.Marshal(&Message{Kind: KindError, Error: err.Error()})
	return c.SendRaw(b)
}

// Recv receives one message. An Error message is returned as an error.
func (c *Conn) Recv() (*Message, []*os.File, error) {
	b, files, err := c.RecvRaw()
	if err != nil {
		return nil, nil, err
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("bad message from init: %w", err)
	}
	if m.Kind == KindError {
		return &m, files, errors.New(m.Error)
	}
	return &m, files, nil
}

// Expect receives a message of kind and decodes its data into v (if non-nil).
func (c *Conn) Expect(kind string, v any) ([]*os.File, error) {
	m, files, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if m.Kind != kind {
		return nil, fmt.Errorf("init sent %q, want %q", m.Kind, kind)
	}
	if v != nil {
		if err := json.Unmarshal(m.Data, v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kind, err)
		}
	}
	return files, nil
}
