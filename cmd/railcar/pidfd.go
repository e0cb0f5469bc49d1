package main

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// sendPidfd sends a pidfd of pid to the AF_UNIX socket at path (runc's
// --pidfd-socket): a supervisor can then signal and wait for the process
// without racing pid reuse. pid is railcar's unreaped child, so it cannot
// have been reused before the pidfd is opened.
func sendPidfd(path string, pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("dial pidfd socket: %w", err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix([]byte("pidfd"), unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("send pidfd: %w", err)
	}
	return nil
}
