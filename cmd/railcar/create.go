package main

import (
	"fmt"

	"github.com/urfave/cli"
)

var createCommand = cli.Command{
	Name:  "create",
	Usage: "create a container",
	ArgsUsage: `<container-id>

Where "<container-id>" is your name for the instance of the container that you
are starting. The name you provide for the container instance must be unique on
your host.`,
	Description: `The create command creates an instance of a container for a bundle. The bundle
is a directory with a specification file named "` + specConfig + `" and a root
filesystem. The container's process waits until "railcar start" runs it.`,
	Flags: createFlags,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		if _, err := startContainer(c, false); err != nil {
			return fmt.Errorf("create failed: %w", err)
		}
		return nil
	},
}
