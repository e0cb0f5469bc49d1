package process

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capSets are the spec's capability sets, parsed.
type capSets struct {
	bounding, effective, permitted, inheritable, ambient []capability.Cap
}

var capNames = sync.OnceValue(func() map[string]capability.Cap {
	m := make(map[string]capability.Cap)
	for _, c := range capability.ListKnown() {
		m[capName(c)] = c
	}
	return m
})

func capName(c capability.Cap) string { return "CAP_" + strings.ToUpper(c.String()) }

// parseCaps parses the spec's sets and checks them against what this process
// can grant. A name nobody knows is an error; a capability this kernel does
// not have is dropped from the sets (as runc does), so that one spec serves
// older kernels. A bounding-set entry the runtime itself lacks is fine (it
// is simply not kept), but asking for it in any other set is a clear error
// rather than a bare EPERM from capset.
func parseCaps(lc *specs.LinuxCapabilities) (*capSets, error) {
	s := &capSets{}
	if lc == nil {
		return s, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	parse := func(set string, names []string) ([]capability.Cap, error) {
		var out []capability.Cap
		for _, n := range names {
			c, ok := capNames()[strings.ToUpper(n)]
			if !ok {
				return nil, fmt.Errorf("process.capabilities.%s: unknown capability %q", set, n)
			}
			if c <= last {
				out = append(out, c)
			}
		}
		return out, nil
	}
	for _, f := range []struct {
		name  string
		names []string
		dst   *[]capability.Cap
	}{
		{"bounding", lc.Bounding, &s.bounding},
		{"effective", lc.Effective, &s.effective},
		{"permitted", lc.Permitted, &s.permitted},
		{"inheritable", lc.Inheritable, &s.inheritable},
		{"ambient", lc.Ambient, &s.ambient},
	} {
		if *f.dst, err = parse(f.name, f.names); err != nil {
			return nil, err
		}
	}
	return s, s.check()
}

// check verifies the sets can be granted by this process, naming the first
// capability that cannot.
func (s *capSets) check() error {
	cur, err := capability.NewPid2(0)
	if err == nil {
		err = cur.Load()
	}
	if err != nil {
		return fmt.Errorf("read own capabilities: %w", err)
	}
	for _, f := range []struct {
		name string
		caps []capability.Cap
	}{
		{"effective", s.effective},
		{"permitted", s.permitted},
		{"inheritable", s.inheritable},
		{"ambient", s.ambient},
	} {
		for _, c := range f.caps {
			if !cur.Get(capability.BOUNDING, c) {
				return fmt.Errorf("process.capabilities.%s: %s is not in this host's capability bounding set, so no process here can be given it", f.name, capName(c))
			}
			if !cur.Get(capability.PERMITTED, c) {
				return fmt.Errorf("process.capabilities.%s: %s is not in the runtime's permitted set", f.name, capName(c))
			}
		}
	}
	perm := setOf(s.permitted)
	inh := setOf(s.inheritable)
	for _, c := range s.effective {
		if !perm[c] {
			return fmt.Errorf("process.capabilities: effective %s is not in the permitted set", capName(c))
		}
	}
	for _, c := range s.ambient {
		if !perm[c] || !inh[c] {
			return fmt.Errorf("process.capabilities: ambient %s must also be in the permitted and inheritable sets", capName(c))
		}
	}
	return nil
}

func setOf(caps []capability.Cap) map[capability.Cap]bool {
	m := make(map[capability.Cap]bool, len(caps))
	for _, c := range caps {
		m[c] = true
	}
	return m
}

// dropBounding removes from the bounding set everything the spec does not
// list. It needs CAP_SETPCAP, so it runs before the user change.
func (s *capSets) dropBounding() error {
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	keep := setOf(s.bounding)
	for c := capability.Cap(0); c <= last; c++ {
		if keep[c] {
			continue
		}
		in, err := capability.GetBound(c)
		if err != nil {
			return fmt.Errorf("read bounding set: %w", err)
		}
		if !in {
			continue
		}
		if err := capability.DropBound(c); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", capName(c), err)
		}
	}
	return nil
}

// apply sets the effective, permitted and inheritable sets of this thread to
// exactly the spec's, then the ambient set.
func (s *capSets) apply() error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	c.Clear(capability.CAPS)
	c.Set(capability.EFFECTIVE, s.effective...)
	c.Set(capability.PERMITTED, s.permitted...)
	c.Set(capability.INHERITABLE, s.inheritable...)
	if err := c.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	if err := capability.ResetAmbient(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for _, a := range s.ambient {
		if err := capability.SetAmbient(true, a); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", capName(a), err)
		}
	}
	return nil
}

// setIdentity drops the bounding set, switches user and groups while keeping
// the permitted set (PR_SET_KEEPCAPS), and sets the final capability sets.
//
// The working directory is first entered here, as root, before the switch:
// a cwd the runtime can reach but the user cannot search (a volume owned by
// another user) still works, like runc. On EACCES/EPERM it is retried after
// the switch (a directory only the container user may enter); see finishCwd.
func setIdentity(p *plan, cwd string) error {
	if cwd != "" {
		err := chdir(cwd)
		switch {
		case err == nil:
			p.cwdDone = true
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		default:
			return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
		}
	}

	var pdeath int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&pdeath)), 0, 0, 0); err != nil {
		return fmt.Errorf("read parent death signal: %w", err)
	}
	if err := p.caps.dropBounding(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	if err := setUser(p.user); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	// Changing credentials clears the parent death signal; the caller set
	// it for a reason (the init must die with its parent until start).
	if pdeath != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(pdeath), 0, 0, 0); err != nil {
			return fmt.Errorf("restore parent death signal: %w", err)
		}
	}
	return p.caps.apply()
}
