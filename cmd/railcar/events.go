package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/runc/types"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

var eventsCommand = cli.Command{
	Name:  "events",
	Usage: "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
	ArgsUsage: `<container-id>

Where "<container-id>" is the name for the instance of the container.`,
	Description: `The events command displays information about the container. By default the
information is displayed once every 5 seconds, one JSON object per line in
runc's format ({"type","id","data"}).`,
	Flags: []cli.Flag{
		cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "set the stats collection interval"},
		cli.BoolFlag{Name: "stats", Usage: "display the container's stats then exit"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		interval := c.Duration("interval")
		if interval <= 0 {
			return errors.New("duration interval must be greater than 0")
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
			return fmt.Errorf("container with id %s is not running", ctr.ID())
		}
		cg := ctr.Cgroup()
		if cg == nil {
			return fmt.Errorf("container %s has no cgroup", ctr.ID())
		}
		enc := json.NewEncoder(os.Stdout)
		if c.Bool("stats") {
			s, err := cg.Stats()
			if err != nil {
				return err
			}
			return enc.Encode(&types.Event{Type: "stats", ID: ctr.ID(), Data: s})
		}
		return streamEvents(ctr, enc, interval)
	},
}

// streamEvents prints stats every interval and every OOM kill until the
// container stops.
func streamEvents(ctr *linux.Container, enc *json.Encoder, interval time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cg := ctr.Cgroup()
	oom, err := cg.OOM(ctx)
	if err != nil {
		logrus.Warnf("oom notifications: %v", err)
		oom = nil
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-oom:
			if !ok {
				oom = nil
				continue
			}
			if err := enc.Encode(&types.Event{Type: "oom", ID: ctr.ID()}); err != nil {
				return err
			}
		case <-tick.C:
			st, err := ctr.State()
			if err != nil || st.Status == linux.Stopped {
				return nil
			}
			s, err := cg.Stats()
			if err != nil {
				logrus.Error(err)
				continue
			}
			if err := enc.Encode(&types.Event{Type: "stats", ID: ctr.ID(), Data: s}); err != nil {
				return err
			}
		}
	}
}
