package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/urfave/cli"
)

var specCommand = cli.Command{
	Name:      "spec",
	Usage:     "create a new specification file",
	ArgsUsage: "",
	Description: `The spec command creates the new specification file named "` + specConfig + `" for
the bundle: runc's default, which runs "sh" in a container with its own
namespaces and a read-only root filesystem at "rootfs". Edit it to taste.

With --rootless the spec gets a user namespace mapping the current user to
root, and no resource limits or network namespace.`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "bundle, b", Usage: "path to the root of the bundle directory"},
		cli.BoolFlag{Name: "rootless", Usage: "generate a configuration for a rootless container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		spec := specconv.Example()
		if c.Bool("rootless") {
			specconv.ToRootless(spec)
		}
		path := filepath.Join(c.String("bundle"), specConfig)
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("file %s exists, remove it first", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		data, err := json.MarshalIndent(spec, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(data, '\n'), 0o666)
	},
}
