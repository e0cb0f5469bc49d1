package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

const specConfig = "config.json"

var errEmptyID = errors.New("container id cannot be empty")

const (
	exactArgs = iota
	minArgs
	maxArgs
)

// checkArgs checks the number of positional arguments of a command.
func checkArgs(c *cli.Context, expected, kind int) error {
	name := c.Command.Name
	switch kind {
	case exactArgs:
		if c.NArg() != expected {
			return fmt.Errorf("%q requires exactly %d argument(s)", name, expected)
		}
	case minArgs:
		if c.NArg() < expected {
			return fmt.Errorf("%q requires a minimum of %d argument(s)", name, expected)
		}
	case maxArgs:
		if c.NArg() > expected {
			return fmt.Errorf("%q requires a maximum of %d argument(s)", name, expected)
		}
	}
	return nil
}

// idPattern is runc's rule for container ids.
var idPattern = regexp.MustCompile(`^[\w+\-.]+$`)

// validID checks a container id: it names a directory under --root.
func validID(id string) error {
	if id == "" {
		return errEmptyID
	}
	if id == "." || id == ".." || !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container id format: %s", id)
	}
	return nil
}

// newEngine opens the state root named by the global flags.
func newEngine(c *cli.Context) (*linux.Engine, error) {
	return linux.New(linux.Config{
		Root:          c.GlobalString("root"),
		SystemdCgroup: c.GlobalBool("systemd-cgroup"),
		InitMode:      c.GlobalBool("init"),
	})
}

// getContainer loads the container named by the first argument.
func getContainer(c *cli.Context) (*linux.Container, error) {
	id := c.Args().First()
	if err := validID(id); err != nil {
		return nil, err
	}
	e, err := newEngine(c)
	if err != nil {
		return nil, err
	}
	return e.Load(id)
}

// loadSpec reads a bundle's config.json.
func loadSpec(path string) (*specs.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("JSON specification file %s not found", path)
		}
		return nil, err
	}
	var spec *specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if spec == nil {
		return nil, errors.New("config cannot be null")
	}
	if spec.Linux != nil {
		unsetZeroWeights(spec.Linux.Resources)
	}
	return spec, validateProcess(spec.Process)
}

// unsetZeroWeights drops blkio weights of 0: docker sends them for "not
// set" (on create and update) and runc ignores them; no kernel has a
// weight 0, and one without CFQ/BFQ has no weight file at all.
func unsetZeroWeights(r *specs.LinuxResources) {
	if r == nil || r.BlockIO == nil {
		return
	}
	if w := r.BlockIO.Weight; w != nil && *w == 0 {
		r.BlockIO.Weight = nil
	}
	if w := r.BlockIO.LeafWeight; w != nil && *w == 0 {
		r.BlockIO.LeafWeight = nil
	}
}

// validateProcess checks what the command line needs of a process before
// anything is created; the engine validates the rest.
func validateProcess(p *specs.Process) error {
	if p == nil {
		return errors.New("process property must not be empty")
	}
	if p.Cwd == "" {
		return errors.New("cwd property must not be empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return errors.New("cwd must be an absolute path")
	}
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("args must not be empty")
	}
	return nil
}

// absFlag makes a path flag absolute, so it survives the chdir into the
// bundle.
func absFlag(c *cli.Context, name string) (string, error) {
	p := c.String(name)
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}

// listenFiles takes the sockets systemd passed by socket activation
// ($LISTEN_FDS for our pid), as runc does: they become fds 3.. of the
// workload, which sees LISTEN_FDS=n and LISTEN_PID=1.
func listenFiles() []*os.File {
	defer os.Unsetenv("LISTEN_PID")
	defer os.Unsetenv("LISTEN_FDS")
	defer os.Unsetenv("LISTEN_FDNAMES")
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	files := make([]*os.File, 0, n)
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd)))
	}
	return files
}

// preservedFiles returns the n fds that follow the socket-activation fds
// (runc --preserve-fds): fds 3+len(listen) .. 3+len(listen)+n-1.
func preservedFiles(listen int, n int) ([]*os.File, error) {
	if n < 0 {
		return nil, fmt.Errorf("invalid --preserve-fds %d", n)
	}
	base := 3 + listen
	var files []*os.File
	for fd := base; fd < base+n; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("unable to stat preserved-fd %d (of %d): %w", fd-base, n, err)
		}
		files = append(files, os.NewFile(uintptr(fd), "PreserveFD:"+strconv.Itoa(fd)))
	}
	return files, nil
}

// extraFiles collects the fds a new workload inherits and sets LISTEN_FDS in
// its environment when systemd passed sockets.
func extraFiles(c *cli.Context, p *specs.Process) ([]*os.File, error) {
	listen := listenFiles()
	if len(listen) > 0 {
		p.Env = append(p.Env, "LISTEN_FDS="+strconv.Itoa(len(listen)), "LISTEN_PID=1")
	}
	preserved, err := preservedFiles(len(listen), c.Int("preserve-fds"))
	if err != nil {
		return nil, err
	}
	return append(listen, preserved...), nil
}

// closeInheritedFds marks every fd above stdio close-on-exec, so that no
// fd railcar inherited reaches a container unless it is passed on purpose
// (--preserve-fds, LISTEN_FDS): those are dup'ed into place for the child,
// which clears the flag on the copy.
func closeInheritedFds() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
