package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

var startCommand = cli.Command{
	Name:  "start",
	Usage: "executes the user defined process in a created container",
	ArgsUsage: `<container-id>

Where "<container-id>" is your name for the instance of the container that you
are starting.`,
	Description: `The start command executes the user defined process in a created container.`,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
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
		switch st.Status {
		case linux.Created:
			return ctr.Start(context.Background())
		case linux.Stopped:
			return errors.New("cannot start a container that has stopped")
		case linux.Running:
			return errors.New("cannot start an already running container")
		default:
			return fmt.Errorf("cannot start a container in the %s state", st.Status)
		}
	},
}
