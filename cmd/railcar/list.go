package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

const formatOptions = `table or json`

var listCommand = cli.Command{
	Name:  "list",
	Usage: "lists containers started by railcar with the given root",
	ArgsUsage: `

Where the given root is specified via the global option "--root"
(default: "` + linux.DefaultRoot + `").`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "format, f", Value: "table", Usage: "select one of: " + formatOptions},
		cli.BoolFlag{Name: "quiet, q", Usage: "display only container IDs"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		format := c.String("format")
		if format != "table" && format != "json" {
			return errors.New("invalid format option")
		}
		states, err := listContainers(c)
		if err != nil {
			return err
		}
		if c.Bool("quiet") {
			for _, s := range states {
				fmt.Println(s.ID)
			}
			return nil
		}
		if format == "json" {
			if states == nil {
				states = []linux.State{}
			}
			return json.NewEncoder(os.Stdout).Encode(states)
		}
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n",
				s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	},
}

// listContainers returns every container of the root. A missing default
// root means no container yet; a missing --root given by the user is an
// error, as in runc.
func listContainers(c *cli.Context) ([]linux.State, error) {
	if _, err := os.Stat(c.GlobalString("root")); errors.Is(err, os.ErrNotExist) && !c.GlobalIsSet("root") {
		return nil, nil
	}
	e, err := newEngine(c)
	if err != nil {
		return nil, err
	}
	states, err := e.List()
	if err != nil {
		return nil, err
	}
	for i := range states {
		if states[i].Status == linux.Stopped {
			states[i].Pid = 0
		}
	}
	return states, nil
}
