package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

var stateCommand = cli.Command{
	Name:  "state",
	Usage: "output the state of a container",
	ArgsUsage: `<container-id>

Where "<container-id>" is your name for the instance of the container.`,
	Description: `The state command outputs current state information for the
instance of a container, as OCI state JSON.`,
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
		if st.Status == linux.Stopped {
			st.Pid = 0
		}
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(data, '\n'))
		return err
	},
}
