// Package process gives the container process the attributes its spec asks
// for: session keyring, rlimits, oom_score_adj, personality, scheduler, I/O
// priority, CPU affinity, LSM labels, seccomp, capabilities, user and groups,
// umask, working directory and no_new_privs.
//
// It runs in the container's init and in exec'd processes, after the rootfs
// is set up and the process is pivoted (or chrooted) into it, inside all its
// namespaces, as root of its user namespace; the caller then waits for
// `start`, calls LateSeccomp, and execve's the workload (LookPath finds it).
// In the init:
//
//	cfg := &process.Config{Process: spec.Process, Linux: spec.Linux, ContainerID: id}
//	if err := process.Apply(cfg, sendToParent); err != nil { ... }
//	path, err := process.LookPath(cfg.Process) // before start: a create-time error
//	... report ready, wait for start ...
//	if err := process.LateSeccomp(cfg, sendToParent); err != nil { ... }
//	unix.Exec(path, cfg.Process.Args, cfg.Process.Env) // same goroutine as Apply
//
// and in the parent, once the process has exec'd:
//
//	process.FinalCPUAffinity(pid, spec.Process)
//
// Seccomp filters are compiled with libseccomp through runc's
// libcontainer/seccomp, which needs cgo and the "seccomp" build tag: build
// and test with `-tags seccomp`. A binary built without it refuses every spec
// that has a seccomp profile (see errNoSeccomp).
package process

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is what Apply needs to know about the process.
type Config struct {
	Process *specs.Process
	// Linux supplies seccomp, personality and the namespaces (a user
	// namespace changes the session keyring's permissions); may be nil.
	Linux *specs.Linux
	// NoNewKeyring keeps the session keyring (runc --no-new-keyring); else
	// the process joins a new session keyring named "_ses.<ContainerID>".
	NoNewKeyring bool
	ContainerID  string

	// seccomp caches the converted filter between Apply and LateSeccomp.
	seccomp *configs.Seccomp
}

// Apply applies everything up to the wait for start, in runc's order:
//
//  1. new session keyring (unless NoNewKeyring);
//  2. rlimits, then oom_score_adj (only if set);
//  3. personality, scheduler, I/O priority, execCPUAffinity.initial;
//  4. AppArmor profile and SELinux label (both take effect at execve);
//  5. seccomp when NoNewPrivileges is false: without no_new_privs loading a
//     filter needs CAP_SYS_ADMIN, so it must precede the capability drop;
//     a notify fd (SCMP_ACT_NOTIFY) is handed to notify and closed after;
//  6. bounding set drop, PR_SET_KEEPCAPS, stdio ownership, setgroups,
//     setresgid, setresuid, then the effective, permitted, inheritable and
//     ambient sets exactly as the spec lists them (nil Capabilities means
//     none at all, as in runc);
//  7. umask (default 0022) and working directory, verified to be inside the
//     container root (CVE-2024-21626);
//  8. no_new_privs.
//
// Everything in the spec is parsed and checked before the first change, so
// a bad spec fails without leaving the process half set up. When HOME is
// absent from process.env, Apply appends HOME from the container's
// /etc/passwd ("/" when the user has no entry) to c.Process.Env, like runc.
//
// Preconditions: runs inside the container root and namespaces, as root of
// the user namespace. Capabilities, the bounding set, securebits, seccomp,
// no_new_privs, scheduling, I/O priority, affinity, personality, LSM exec
// labels and the session keyring are per thread: Apply locks the calling
// goroutine to its thread and never unlocks it, and the caller must call
// LateSeccomp and execve from that same goroutine.
func Apply(c *Config, notify func(*os.File) error) error {
	runtime.LockOSThread()
	if c == nil || c.Process == nil {
		return errors.New("process: no process in config")
	}
	p, err := prepare(c)
	if err != nil {
		return err
	}

	if !c.NoNewKeyring {
		if err := joinSessionKeyring(c.ContainerID, hasUserNS(c.Linux), p.selinuxLabel); err != nil {
			return err
		}
	}
	if err := setRlimits(p.rlimits); err != nil {
		return err
	}
	if c.Process.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*c.Process.OOMScoreAdj); err != nil {
			return err
		}
	}
	if err := setPersonality(p.personality); err != nil {
		return err
	}
	if err := setScheduler(p.sched); err != nil {
		return err
	}
	if err := setIOPriority(p.ioprio); err != nil {
		return err
	}
	if p.affinity != nil {
		if err := unix.SchedSetaffinity(0, p.affinity); err != nil {
			return fmt.Errorf("set initial cpu affinity %q: %w", c.Process.ExecCPUAffinity.Initial, err)
		}
	}
	if err := setAppArmorProfile(c.Process.ApparmorProfile); err != nil {
		return err
	}
	if err := setSELinuxLabel(p.selinuxLabel); err != nil {
		return err
	}
	// Enter and verify the cwd as root before a seccomp filter can forbid
	// getcwd; if root may not enter it, setIdentity retries as the user.
	cwd := c.Process.Cwd
	if cwd != "" {
		err := chdir(cwd)
		switch {
		case err == nil:
			if err := finishCwd(cwd, true); err != nil {
				return err
			}
			cwd = ""
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		default:
			return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
		}
	}
	if c.seccomp != nil && !c.Process.NoNewPrivileges {
		if err := loadSeccomp(c.seccomp, notify); err != nil {
			return err
		}
	}
	if err := setIdentity(p, cwd); err != nil {
		return err
	}
	unix.Umask(p.umask)
	if cwd != "" {
		if err := finishCwd(cwd, p.cwdDone); err != nil {
			return err
		}
	}
	if c.Process.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	return nil
}

// LateSeccomp loads the seccomp filter when NoNewPrivileges is set (the
// caller runs it as the very last step before execve, after the start wait,
// so the workload's profile need not allow the runtime's own syscalls),
// passing a notify fd to notify. No-op otherwise, and when the spec has no
// seccomp profile. Preconditions: Apply succeeded on this goroutine.
func LateSeccomp(c *Config, notify func(*os.File) error) error {
	if c == nil || c.Process == nil || !c.Process.NoNewPrivileges {
		return nil
	}
	if c.seccomp == nil {
		var err error
		if c.seccomp, err = seccompConfig(c.Linux); err != nil {
			return err
		}
		if c.seccomp == nil {
			return nil
		}
	}
	return loadSeccomp(c.seccomp, notify)
}

// plan is the spec parsed and checked, ready to apply.
type plan struct {
	user         *execUser
	caps         *capSets
	rlimits      []rlimit
	personality  int // -1: leave alone
	sched        *unix.SchedAttr
	ioprio       int // -1: leave alone
	affinity     *unix.CPUSet
	selinuxLabel string
	umask        int
	cwdDone      bool // set once the working directory is reached
}

func prepare(c *Config) (*plan, error) {
	proc := c.Process
	p := &plan{personality: -1, ioprio: -1, umask: 0o022}
	var err error

	if p.user, err = resolveUser(&proc.User, "/"); err != nil {
		return nil, err
	}
	proc.Env = withHome(proc.Env, p.user.home)
	if proc.User.Umask != nil {
		p.umask = int(*proc.User.Umask)
	}
	if p.caps, err = parseCaps(proc.Capabilities); err != nil {
		return nil, err
	}
	if p.rlimits, err = parseRlimits(proc.Rlimits); err != nil {
		return nil, err
	}
	if proc.OOMScoreAdj != nil && (*proc.OOMScoreAdj < -1000 || *proc.OOMScoreAdj > 1000) {
		return nil, fmt.Errorf("oom_score_adj %d is out of range [-1000, 1000]", *proc.OOMScoreAdj)
	}
	if c.Linux != nil && c.Linux.Personality != nil {
		if p.personality, err = parsePersonality(c.Linux.Personality); err != nil {
			return nil, err
		}
	}
	if proc.Scheduler != nil {
		if p.sched, err = parseScheduler(proc.Scheduler); err != nil {
			return nil, err
		}
	}
	if proc.IOPriority != nil {
		if p.ioprio, err = parseIOPriority(proc.IOPriority); err != nil {
			return nil, err
		}
	}
	if a := proc.ExecCPUAffinity; a != nil {
		if p.affinity, err = parseCPUSet(a.Initial); err != nil {
			return nil, fmt.Errorf("execCPUAffinity.initial: %w", err)
		}
		if _, err := parseCPUSet(a.Final); err != nil {
			return nil, fmt.Errorf("execCPUAffinity.final: %w", err)
		}
	}
	if proc.ApparmorProfile != "" {
		if err := checkAppArmor(proc.ApparmorProfile); err != nil {
			return nil, err
		}
	}
	if proc.SelinuxLabel != "" {
		if err := checkSELinux(proc.SelinuxLabel); err != nil {
			return nil, err
		}
		p.selinuxLabel = proc.SelinuxLabel
	}
	if c.seccomp, err = seccompConfig(c.Linux); err != nil {
		return nil, err
	}
	return p, nil
}

func hasUserNS(l *specs.Linux) bool {
	if l == nil {
		return false
	}
	for _, ns := range l.Namespaces {
		if ns.Type == specs.UserNamespace {
			return true
		}
	}
	return false
}

// retryEINTR runs fn until it returns something other than EINTR: Go's
// preemption signal can interrupt raw syscalls.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
