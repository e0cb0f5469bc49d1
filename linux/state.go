package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	stateFile = "state.json"
	fifoFile  = "exec.fifo"
)

// saved is what a container's state directory holds between commands.
type saved struct {
	ID      string      `json:"id"`
	Bundle  string      `json:"bundle"`
	Rootfs  string      `json:"rootfs"`
	Pid     int         `json:"pid"`
	Start   uint64      `json:"pidStart"` // /proc/PID/stat starttime: guards against pid reuse
	Created time.Time   `json:"created"`
	Owner   string      `json:"owner"`
	Systemd bool        `json:"systemd,omitempty"`
	Spec    *specs.Spec `json:"spec"`
}

func (s *saved) write(dir string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+stateFile)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

func readSaved(dir string) (*saved, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state of %s: %w", filepath.Base(dir), err)
	}
	return &s, nil
}

// pidStart returns the start time of pid (field 22 of /proc/PID/stat) and
// whether it is a zombie.
func pidStart(pid int) (uint64, bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false, errors.New("bad stat")
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0] == "Z" || f[0] == "X", err
}

// alive reports whether the recorded init is still the same live process.
func (s *saved) alive() bool {
	if s.Pid <= 0 {
		return false
	}
	st, zombie, err := pidStart(s.Pid)
	return err == nil && !zombie && st == s.Start
}

// pidfd opens the recorded init, checking it is still the same process.
func (s *saved) pidfd() (int, error) {
	fd, err := unix.PidfdOpen(s.Pid, 0)
	if err != nil {
		return -1, err
	}
	if !s.alive() {
		unix.Close(fd)
		return -1, unix.ESRCH
	}
	return fd, nil
}
