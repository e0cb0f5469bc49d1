package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

// execFailed is runc's exit status when exec itself fails (as opposed to
// the process it runs).
const execFailed = 255

var execCommand = cli.Command{
	Name:  "exec",
	Usage: "execute new process inside the container",
	ArgsUsage: `<container-id> <command> [command options]  || -p process.json <container-id>

Where "<container-id>" is the name for the instance of the container and
"<command>" is the command to be executed in the container.
"<command>" can't be empty unless a "-p" flag provided.

EXAMPLE:
       # railcar exec <container-id> ps`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"},
		cli.StringFlag{Name: "pidfd-socket", Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process"},
		cli.StringFlag{Name: "cwd", Usage: "current working directory in the container"},
		cli.StringSliceFlag{Name: "env, e", Usage: "set environment variables"},
		cli.BoolFlag{Name: "tty, t", Usage: "allocate a pseudo-TTY"},
		cli.StringFlag{Name: "user, u", Usage: "UID (format: <uid>[:<gid>])"},
		cli.Int64SliceFlag{Name: "additional-gids, g", Usage: "additional gids"},
		cli.StringFlag{Name: "process, p", Usage: "path to the process.json"},
		cli.BoolFlag{Name: "detach, d", Usage: "detach from the container's process"},
		cli.StringFlag{Name: "pid-file", Usage: "specify the file to write the process id to"},
		cli.StringFlag{Name: "process-label", Usage: "set the asm process label for the process commonly used with selinux"},
		cli.StringFlag{Name: "apparmor", Usage: "set the apparmor profile for the process"},
		cli.BoolFlag{Name: "no-new-privs", Usage: "set the no new privileges value for the process"},
		cli.StringSliceFlag{Name: "cap, c", Value: &cli.StringSlice{}, Usage: "add a capability to the bounding set for the process"},
		cli.IntFlag{Name: "preserve-fds", Usage: "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"},
		cli.BoolFlag{Name: "ignore-paused", Usage: "allow exec in a paused container"},
	},
	// Everything after the id is the command and its own flags.
	SkipArgReorder: true,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		status, err := execProcess(c)
		if err != nil {
			return &exitError{code: execFailed, err: fmt.Errorf("exec failed: %w", err)}
		}
		return &exitError{code: status}
	},
}

// execProcess runs a process in the container. Detached it returns once the
// process runs; in the foreground it forwards signals, waits and returns
// the process's exit status.
func execProcess(c *cli.Context) (int, error) {
	pidFile, err := absFlag(c, "pid-file")
	if err != nil {
		return -1, err
	}
	consoleSocket, err := absFlag(c, "console-socket")
	if err != nil {
		return -1, err
	}
	pidfdSocket, err := absFlag(c, "pidfd-socket")
	if err != nil {
		return -1, err
	}
	ctr, err := getContainer(c)
	if err != nil {
		return -1, err
	}
	st, err := ctr.State()
	if err != nil {
		return -1, err
	}
	switch {
	case st.Status == linux.Stopped:
		return -1, errors.New("cannot exec in a stopped container")
	case st.Status == linux.Paused && !c.Bool("ignore-paused"):
		return -1, errors.New("cannot exec in a paused container (use --ignore-paused to override)")
	}
	p, err := execSpec(c, ctr)
	if err != nil {
		return -1, err
	}
	detach := c.Bool("detach")
	if err := checkTerminal(detach, p.Terminal, consoleSocket); err != nil {
		return -1, err
	}
	files, err := extraFiles(c, p)
	if err != nil {
		return -1, err
	}

	var sig *signalHandler
	if !detach {
		sig = newSignalHandler()
		defer sig.stop()
	}
	stdio, onConsole, t, err := processIO(p.Terminal, detach)
	if err != nil {
		return -1, err
	}
	defer t.close()
	opts := linux.ExecOpts{
		Process:       p,
		Stdio:         stdio,
		OnConsole:     onConsole,
		ConsoleSocket: consoleSocket,
		ExtraFiles:    files,
		PidFile:       pidFile,
	}
	pid, err := ctr.Exec(context.Background(), opts)
	if err != nil {
		return -1, err
	}
	if pidfdSocket != "" {
		if err := sendPidfd(pidfdSocket, pid); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return -1, err
		}
	}
	if detach {
		return 0, nil
	}
	status := sig.forward(pid, t)
	t.close()
	return status, nil
}

// execSpec is the process to run: process.json (-p), or the container's
// own process with the command line's arguments and overrides.
func execSpec(c *cli.Context, ctr *linux.Container) (*specs.Process, error) {
	if path := c.String("process"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		return &p, validateProcess(&p)
	}
	args := c.Args()
	if len(args) < 2 {
		return nil, errors.New("exec args cannot be empty")
	}
	p, err := baseProcess(ctr)
	if err != nil {
		return nil, err
	}
	p.Args = args[1:]
	p.CommandLine = ""
	if cwd := c.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	if ap := c.String("apparmor"); ap != "" {
		p.ApparmorProfile = ap
	}
	if l := c.String("process-label"); l != "" {
		p.SelinuxLabel = l
	}
	if caps := c.StringSlice("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, name := range caps {
			name = strings.ToUpper(name)
			if !strings.HasPrefix(name, "CAP_") {
				name = "CAP_" + name
			}
			pc := p.Capabilities
			pc.Bounding = append(pc.Bounding, name)
			pc.Effective = append(pc.Effective, name)
			pc.Permitted = append(pc.Permitted, name)
			// Ambient needs inheritable, which --cap does not set:
			// only add it when the spec already has inheritable bits.
			if pc.Inheritable != nil {
				pc.Ambient = append(pc.Ambient, name)
			}
		}
	}
	p.Env = append(p.Env, c.StringSlice("env")...)
	// A terminal only when asked for on the command line.
	p.Terminal = c.Bool("tty")
	p.ConsoleSize = nil
	if c.IsSet("no-new-privs") {
		p.NoNewPrivileges = c.Bool("no-new-privs")
	}
	if u := c.String("user"); u != "" {
		uids, gids, hasGID := strings.Cut(u, ":")
		uid, err := strconv.ParseUint(uids, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad uid: %w", err)
		}
		p.User.UID = uint32(uid)
		if hasGID {
			gid, err := strconv.ParseUint(gids, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad gid: %w", err)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range c.Int64Slice("additional-gids") {
		if g < 0 || g > 1<<32-1 {
			return nil, fmt.Errorf("additional-gids must be a positive number %d", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	return p, validateProcess(p)
}

// baseProcess is a deep copy of the container's process, the defaults of
// the argv form of exec.
func baseProcess(ctr *linux.Container) (*specs.Process, error) {
	spec := ctr.Spec()
	if spec == nil || spec.Process == nil {
		return nil, errors.New("container has no process to take defaults from")
	}
	data, err := json.Marshal(spec.Process)
	if err != nil {
		return nil, err
	}
	var p specs.Process
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
