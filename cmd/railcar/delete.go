package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

var deleteCommand = cli.Command{
	Name:  "delete",
	Usage: "delete any resources held by the container often used with detached container",
	ArgsUsage: `<container-id>

Where "<container-id>" is the name for the instance of the container.`,
	Flags: []cli.Flag{
		cli.BoolFlag{Name: "force, f", Usage: "forcibly deletes the container if it is still running (uses SIGKILL)"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		id := c.Args().First()
		force := c.Bool("force")
		ctr, err := getContainer(c)
		if err != nil {
			if errors.Is(err, linux.ErrNotExist) && force && validID(id) == nil {
				// An aborted create can leave a directory without
				// a state file; -f removes it, as runc does.
				_ = os.RemoveAll(filepath.Join(c.GlobalString("root"), id))
				return nil
			}
			return err
		}
		ctx := context.Background()
		if force {
			return ctr.Delete(ctx, true)
		}
		st, err := ctr.State()
		if err != nil {
			return err
		}
		switch st.Status {
		case linux.Stopped:
			return ctr.Delete(ctx, false)
		case linux.Created:
			// A created container has not run anything of the user's
			// yet; runc deletes it without -f.
			return ctr.Delete(ctx, true)
		default:
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, st.Status)
		}
	},
}
