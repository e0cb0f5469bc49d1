package process

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitTypes = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

type rlimit struct {
	name     string
	resource int
	soft     uint64
	hard     uint64
}

func parseRlimits(in []specs.POSIXRlimit) ([]rlimit, error) {
	seen := make(map[string]bool)
	out := make([]rlimit, 0, len(in))
	for _, r := range in {
		res, ok := rlimitTypes[r.Type]
		if !ok {
			return nil, fmt.Errorf("process.rlimits: unknown type %q", r.Type)
		}
		if seen[r.Type] {
			return nil, fmt.Errorf("process.rlimits: %s given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return nil, fmt.Errorf("process.rlimits: %s soft limit %s exceeds hard limit %s", r.Type, limitString(r.Soft), limitString(r.Hard))
		}
		out = append(out, rlimit{name: r.Type, resource: res, soft: r.Soft, hard: r.Hard})
	}
	return out, nil
}

// setRlimits sets the limits of the process. Go raises the soft NOFILE
// limit at startup and puts the old value back at execve unless told
// otherwise, which would undo the spec's NOFILE limit; unix.Prlimit (through
// the syscall package since Go 1.21) tells it, a raw prlimit64 would not.
func setRlimits(limits []rlimit) error {
	for _, l := range limits {
		var old unix.Rlimit
		if err := unix.Prlimit(0, l.resource, nil, &old); err != nil {
			return fmt.Errorf("get %s: %w", l.name, err)
		}
		err := unix.Prlimit(0, l.resource, &unix.Rlimit{Cur: l.soft, Max: l.hard}, nil)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EPERM) && l.resource == unix.RLIMIT_NOFILE {
			if ceiling, ok := nrOpen(); ok && l.hard > ceiling {
				return fmt.Errorf("set %s to %s/%s: the hard limit exceeds the kernel's fs.nr_open (%d): %w",
					l.name, limitString(l.soft), limitString(l.hard), ceiling, err)
			}
		}
		if errors.Is(err, unix.EPERM) && l.hard > old.Max {
			return fmt.Errorf("set %s to %s/%s: raising the hard limit above %s needs %s: %w",
				l.name, limitString(l.soft), limitString(l.hard), limitString(old.Max), missingCap(capability.CAP_SYS_RESOURCE), err)
		}
		return fmt.Errorf("set %s to %s/%s: %w", l.name, limitString(l.soft), limitString(l.hard), err)
	}
	return nil
}

// nrOpen is fs.nr_open, the ceiling of RLIMIT_NOFILE even for root.
func nrOpen() (uint64, bool) {
	data, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return v, err == nil
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// setOOMScoreAdj writes /proc/self/oom_score_adj (a per-process value).
// Going below the lowest value the process has had needs CAP_SYS_RESOURCE.
//
// The engine writes it first from outside (linux.spawn): once a credential
// change has made the process non-dumpable, its /proc/self files belong to
// the host's root, which a process in a user namespace cannot open for
// writing. Nothing is left to do then.
func setOOMScoreAdj(v int) error {
	cur := ""
	if r, err := OpenProc("self/oom_score_adj", os.O_RDONLY); err == nil {
		buf := make([]byte, 16)
		n, _ := r.Read(buf)
		r.Close()
		cur = strings.TrimSpace(string(buf[:n]))
	}
	if cur == strconv.Itoa(v) {
		return nil
	}
	f, err := OpenProc("self/oom_score_adj", os.O_WRONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strconv.Itoa(v)), 0); err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set oom_score_adj to %d (now %s): lowering it needs %s: %w", v, cur, missingCap(capability.CAP_SYS_RESOURCE), err)
		}
		return fmt.Errorf("set oom_score_adj to %d: %w", v, err)
	}
	return nil
}

// missingCap names c and says why this process lacks it.
func missingCap(c capability.Cap) string {
	if in, err := capability.GetBound(c); err == nil && !in {
		return capName(c) + ", which is not in this host's capability bounding set"
	}
	return capName(c) + ", which this process does not have"
}

// OpenProc opens /proc/<name> for a write that a mount in the container
// must not redirect (CVE-2025-52881): /proc has to be the root of a procfs,
// and the path below it is resolved without symlinks and without crossing
// a mount, so a file bind-mounted over the target is refused. "self/" and
// "thread-self/" (symlinks themselves) are spelt out as pid and tid.
func OpenProc(name string, flag int) (*os.File, error) {
	switch {
	case strings.HasPrefix(name, "self/"):
		name = strconv.Itoa(unix.Getpid()) + name[len("self"):]
	case strings.HasPrefix(name, "thread-self/"):
		name = fmt.Sprintf("%d/task/%d", unix.Getpid(), unix.Gettid()) + name[len("thread-self"):]
	}
	proc, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	defer unix.Close(proc)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(proc, &sfs); err != nil {
		return nil, fmt.Errorf("fstatfs /proc: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(proc, &st); err != nil {
		return nil, fmt.Errorf("stat /proc: %w", err)
	}
	// procfs' root directory is inode 1 (PROC_ROOT_INO).
	if sfs.Type != unix.PROC_SUPER_MAGIC || st.Ino != 1 {
		return nil, fmt.Errorf("/proc is not the root of a procfs (filesystem type %#x, inode %d)", sfs.Type, st.Ino)
	}
	fd, err := unix.Openat2(proc, name, &unix.OpenHow{
		Flags:   uint64(flag) | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		if errors.Is(err, unix.EXDEV) {
			return nil, fmt.Errorf("/proc/%s: something is mounted over it: %w", name, err)
		}
		return nil, fmt.Errorf("open /proc/%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/proc/"+name), nil
}
