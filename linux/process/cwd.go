package process

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func chdir(dir string) error {
	return retryEINTR(func() error { return unix.Chdir(dir) })
}

// finishCwd enters cwd if setIdentity could not (done is false), then
// verifies that the working directory is inside the container root.
//
// CVE-2024-21626: a cwd such as /proc/self/fd/N naming a directory fd leaked
// from the host lets chdir succeed to a directory outside the root; the
// workload would then start there, with the host's filesystem reachable
// through "..". getcwd(2) reports such a directory with an "(unreachable)"
// prefix, which unix.Getwd turns into ENOENT. We use the syscall rather than
// os.Getwd, which may trust $PWD.
func finishCwd(cwd string, done bool) error {
	if cwd != "" && !done {
		if err := chdir(cwd); err != nil {
			return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
		}
	}
	wd, err := unix.Getwd()
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cwd %q is outside the container root (possible container breakout)", cwd)
	}
	if err != nil {
		return fmt.Errorf("verify cwd %q: %w", cwd, err)
	}
	if !filepath.IsAbs(wd) {
		return fmt.Errorf("cwd %q is outside the container root (possible container breakout): getcwd says %q", cwd, wd)
	}
	return nil
}
