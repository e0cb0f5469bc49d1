package process

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Personality domains (linux/personality.h).
const (
	perLinux   = 0x0000
	perLinux32 = 0x0008
)

func parsePersonality(p *specs.LinuxPersonality) (int, error) {
	if len(p.Flags) > 0 {
		// The spec defines no flag values yet.
		return -1, fmt.Errorf("linux.personality: unsupported flags %v", p.Flags)
	}
	switch p.Domain {
	case specs.PerLinux:
		return perLinux, nil
	case specs.PerLinux32:
		return perLinux32, nil
	}
	return -1, fmt.Errorf("linux.personality: unknown domain %q", p.Domain)
}

func setPersonality(persona int) error {
	if persona < 0 {
		return nil
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(persona), 0, 0); errno != 0 {
		return fmt.Errorf("set personality %#x: %w", persona, errno)
	}
	return nil
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther:    0,
	specs.SchedFIFO:     1,
	specs.SchedRR:       2,
	specs.SchedBatch:    3,
	specs.SchedISO:      4,
	specs.SchedIdle:     5,
	specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork:  0x01,
	specs.SchedFlagReclaim:      0x02,
	specs.SchedFlagDLOverrun:    0x04,
	specs.SchedFlagKeepPolicy:   0x08,
	specs.SchedFlagKeepParams:   0x10,
	specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

func parseScheduler(s *specs.Scheduler) (*unix.SchedAttr, error) {
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		return nil, fmt.Errorf("process.scheduler: unknown policy %q", s.Policy)
	}
	var flags uint64
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("process.scheduler: unknown flag %q", f)
		}
		flags |= v
	}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, fmt.Errorf("process.scheduler: nice %d is out of range [-20, 19]", s.Nice)
	}
	if s.Priority < 0 {
		return nil, fmt.Errorf("process.scheduler: negative priority %d", s.Priority)
	}
	return &unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   policy,
		Flags:    flags,
		Nice:     s.Nice,
		Priority: uint32(s.Priority),
		Runtime:  s.Runtime,
		Deadline: s.Deadline,
		Period:   s.Period,
	}, nil
}

func setScheduler(a *unix.SchedAttr) error {
	if a == nil {
		return nil
	}
	if err := unix.SchedSetAttr(0, a, 0); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set scheduler (policy %d, nice %d, priority %d): needs %s: %w", a.Policy, a.Nice, a.Priority, missingCap(capability.CAP_SYS_NICE), err)
		}
		return fmt.Errorf("set scheduler (policy %d, nice %d, priority %d): %w", a.Policy, a.Nice, a.Priority, err)
	}
	return nil
}

// I/O priority classes and ioprio_set's "who" (linux/ioprio.h).
const (
	ioprioClassShift = 13
	ioprioWhoProcess = 1
)

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT:   1,
	specs.IOPRIO_CLASS_BE:   2,
	specs.IOPRIO_CLASS_IDLE: 3,
}

func parseIOPriority(p *specs.LinuxIOPriority) (int, error) {
	class, ok := ioprioClasses[p.Class]
	if !ok {
		return -1, fmt.Errorf("process.ioPriority: unknown class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return -1, fmt.Errorf("process.ioPriority: priority %d is out of range [0, 7]", p.Priority)
	}
	return class<<ioprioClassShift | p.Priority, nil
}

func setIOPriority(prio int) error {
	if prio < 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio))
	if errno != 0 {
		if errno == unix.EPERM {
			return fmt.Errorf("set io priority %#x: the realtime class needs CAP_SYS_NICE or CAP_SYS_ADMIN: %w", prio, errno)
		}
		return fmt.Errorf("set io priority %#x: %w", prio, errno)
	}
	return nil
}

// parseCPUSet parses a cpu list such as "0-3,7" ("" is nil).
func parseCPUSet(list string) (*unix.CPUSet, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	set := new(unix.CPUSet)
	maxCPU := int(unsafe.Sizeof(*set) * 8)
	num := func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad cpu %q in %q", s, list)
		}
		if n >= maxCPU {
			return 0, fmt.Errorf("cpu %d in %q is beyond the supported %d", n, list, maxCPU-1)
		}
		return n, nil
	}
	for part := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := num(lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = num(hi); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("bad cpu range %q in %q", part, list)
			}
		}
		for cpu := first; cpu <= last; cpu++ {
			set.Set(cpu)
		}
	}
	if set.Count() == 0 {
		return nil, fmt.Errorf("no cpus in %q", list)
	}
	return set, nil
}

// FinalCPUAffinity applies execCPUAffinity.final to pid (called by the
// parent after the process exec'd, so the runtime's own work before execve
// ran on the initial set). No-op when final is not set.
func FinalCPUAffinity(pid int, p *specs.Process) error {
	if p == nil || p.ExecCPUAffinity == nil {
		return nil
	}
	set, err := parseCPUSet(p.ExecCPUAffinity.Final)
	if err != nil {
		return fmt.Errorf("execCPUAffinity.final: %w", err)
	}
	if set == nil {
		return nil
	}
	if err := unix.SchedSetaffinity(pid, set); err != nil {
		return fmt.Errorf("set final cpu affinity %q of pid %d: %w", p.ExecCPUAffinity.Final, pid, err)
	}
	return nil
}
