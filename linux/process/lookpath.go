package process

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// LookPath resolves args[0] against the PATH in the process's env (not the
// runtime's) inside the current root, like runc. A name with a slash is
// checked as it is (relative to the working directory). The error for a
// name not found is "exec: \"foo\": executable file not found in $PATH".
func LookPath(p *specs.Process) (string, error) {
	if p == nil || len(p.Args) == 0 {
		return "", errors.New("process.args is empty")
	}
	name := p.Args[0]
	if name == "" {
		return "", errors.New(`exec: "": empty process.args[0]`)
	}
	if strings.Contains(name, "/") {
		if err := findExecutable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	for dir := range strings.SplitSeq(envValue(p.Env, "PATH"), ":") {
		if dir == "" {
			dir = "." // POSIX: an empty PATH entry is the working directory
		}
		path := filepath.Join(dir, name)
		if err := findExecutable(path); err == nil {
			if !filepath.IsAbs(path) {
				path = "./" + path
			}
			return path, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// findExecutable reports whether path is a file this process may execute.
func findExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if fi.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	if err := unix.Faccessat(unix.AT_FDCWD, path, unix.X_OK, unix.AT_EACCESS); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
		return err
	}
	return nil
}

// envValue returns the last value of key in env ("" if absent), the one
// execve's environment lookup would see.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if val, ok := strings.CutPrefix(kv, key+"="); ok {
			v = val
		}
	}
	return v
}
