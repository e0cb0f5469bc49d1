package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli"
)

var psCommand = cli.Command{
	Name:      "ps",
	Usage:     "ps displays the processes running inside a container",
	ArgsUsage: `<container-id> [ps options]`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "format, f", Value: "table", Usage: "select one of: " + formatOptions},
	},
	// Everything after the id belongs to ps(1).
	SkipArgReorder: true,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		format := c.String("format")
		if format != "table" && format != "json" {
			return errors.New("invalid format option")
		}
		ctr, err := getContainer(c)
		if err != nil {
			return err
		}
		pids, err := ctr.Processes()
		if err != nil {
			return err
		}
		if format == "json" {
			if pids == nil {
				pids = []int{}
			}
			return json.NewEncoder(os.Stdout).Encode(pids)
		}
		psArgs := c.Args()[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		out, err := exec.Command("ps", psArgs...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return filterPS(string(out), pids)
	},
}

// filterPS prints ps(1)'s header and the lines of the given pids.
func filterPS(out string, pids []int) error {
	lines := strings.Split(out, "\n")
	pidIndex := slices.Index(strings.Fields(lines[0]), "PID")
	if pidIndex < 0 {
		return errors.New("couldn't find PID field in ps output")
	}
	fmt.Println(lines[0])
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) <= pidIndex {
			continue
		}
		p, err := strconv.Atoi(fields[pidIndex])
		if err != nil {
			return fmt.Errorf("unable to parse pid: %w", err)
		}
		if slices.Contains(pids, p) {
			fmt.Println(line)
		}
	}
	return nil
}
