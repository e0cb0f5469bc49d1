package main

import (
	"fmt"

	"github.com/urfave/cli"
)

var runCommand = cli.Command{
	Name:  "run",
	Usage: "create and run a container",
	ArgsUsage: `<container-id>

Where "<container-id>" is your name for the instance of the container that you
are starting. The name you provide for the container instance must be unique on
your host.`,
	Description: `The run command creates an instance of a container for a bundle and runs it.
In the foreground railcar forwards the signals it receives to the container's
process and exits with its exit status (128+N when signal N killed it).`,
	Flags: append([]cli.Flag{
		cli.BoolFlag{Name: "detach, d", Usage: "detach from the container's process"},
		cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
		cli.BoolFlag{Name: "no-subreaper", Usage: "accepted for compatibility with runc"},
	}, createFlags...),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		status, err := startContainer(c, true)
		if err != nil {
			return fmt.Errorf("run failed: %w", err)
		}
		// Exit with the workload's status so that a supervisor sees it.
		return &exitError{code: status}
	},
}
