package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

var killCommand = cli.Command{
	Name:  "kill",
	Usage: "kill sends the specified signal (default: SIGTERM) to the container's init process",
	ArgsUsage: `<container-id> [signal]

Where "<container-id>" is the name for the instance of the container and
"[signal]" is the signal to be sent to the init process: a name with or
without SIG (KILL, SIGKILL) or a number.

EXAMPLE:
       # railcar kill ubuntu01 KILL`,
	Flags: []cli.Flag{
		cli.BoolFlag{Name: "all, a", Usage: "send the specified signal to all processes inside the container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		if err := checkArgs(c, 2, maxArgs); err != nil {
			return err
		}
		sigstr := c.Args().Get(1)
		if sigstr == "" {
			sigstr = "SIGTERM"
		}
		sig, err := parseSignal(sigstr)
		if err != nil {
			return err
		}
		ctr, err := getContainer(c)
		if err != nil {
			return err
		}
		st, err := ctr.State()
		if err != nil {
			return err
		}
		if st.Status == linux.Stopped {
			// runc's words: containerd's runc shim takes an error that
			// contains them for "process already finished".
			return errors.New("container not running")
		}
		return ctr.Signal(sig, c.Bool("all"))
	},
}

// parseSignal accepts a number, or a name with or without "SIG" in any case.
func parseSignal(raw string) (unix.Signal, error) {
	if n, err := strconv.Atoi(raw); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", raw)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(raw)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// Real-time signals by name: SIGRTMIN+n, SIGRTMAX-n.
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		if n, err := rtOffset(rest, "+"); err == nil && 34+n <= 64 {
			return unix.Signal(34 + n), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX"); ok {
		if n, err := rtOffset(rest, "-"); err == nil && 64-n >= 34 {
			return unix.Signal(64 - n), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q", raw)
}

func rtOffset(s, sign string) (int, error) {
	if s == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(s, sign)
	if !ok {
		return 0, fmt.Errorf("bad offset %q", s)
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad offset %q", s)
	}
	return n, nil
}
