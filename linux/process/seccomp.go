package process

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNoSeccomp is returned for a spec with a seccomp profile by a binary
// built without libseccomp.
var errNoSeccomp = errors.New(`seccomp: this binary was built without seccomp support (needs cgo, libseccomp and the "seccomp" build tag)`)

// seccompConfig converts the spec's profile with runc's specconv, which also
// checks actions, operators, architectures and flags against libseccomp and
// the kernel. nil means no filter.
func seccompConfig(l *specs.Linux) (*configs.Seccomp, error) {
	if l == nil || l.Seccomp == nil {
		return nil, nil
	}
	conf, err := specconv.SetupSeccomp(l.Seccomp)
	if err != nil {
		if !seccompBuilt {
			return nil, errNoSeccomp
		}
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	if conf != nil && !seccompBuilt {
		return nil, errNoSeccomp
	}
	return conf, nil
}

// loadSeccomp compiles and loads the filter into this thread (runc's
// InitSeccomp, with libseccomp). With SCMP_ACT_NOTIFY rules the kernel
// returns a listener fd, which goes to notify and is closed afterwards.
func loadSeccomp(conf *configs.Seccomp, notify func(*os.File) error) error {
	fd, err := seccomp.InitSeccomp(conf)
	if err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	if fd < 0 {
		return nil
	}
	f := os.NewFile(uintptr(fd), "seccomp-notify")
	defer f.Close()
	if notify == nil {
		return errors.New("seccomp profile uses SCMP_ACT_NOTIFY but no listener was given")
	}
	if err := notify(f); err != nil {
		return fmt.Errorf("hand over seccomp notify fd: %w", err)
	}
	return nil
}
