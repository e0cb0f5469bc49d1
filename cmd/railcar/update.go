package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"
)

var updateCommand = cli.Command{
	Name:      "update",
	Usage:     "update container resource constraints",
	ArgsUsage: `<container-id>`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "resources, r", Usage: `path to the file containing the resources to update or '-' to read from the standard input

The accepted format is the runtime spec's linux.resources (unchanged values
can be omitted). If data is read from a file or the standard input, all other
options are ignored.`},
		cli.IntFlag{Name: "blkio-weight", Usage: "specifies per cgroup weight, range is from 10 to 1000"},
		cli.StringFlag{Name: "cpu-period", Usage: "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"},
		cli.StringFlag{Name: "cpu-quota", Usage: "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"},
		cli.StringFlag{Name: "cpu-burst", Usage: "CPU CFS hardcap burst limit (in usecs)"},
		cli.StringFlag{Name: "cpu-share, cpu-shares", Usage: "CPU shares (relative weight vs. other containers)"},
		cli.StringFlag{Name: "cpu-rt-period", Usage: "CPU realtime period to be used for hardcapping (in usecs)"},
		cli.StringFlag{Name: "cpu-rt-runtime", Usage: "CPU realtime hardcap limit (in usecs)"},
		cli.StringFlag{Name: "cpuset-cpus", Usage: "CPU(s) to use"},
		cli.StringFlag{Name: "cpuset-mems", Usage: "memory node(s) to use"},
		cli.StringFlag{Name: "cpu-idle", Usage: "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"},
		cli.StringFlag{Name: "kernel-memory", Usage: "(obsoleted; do not use)", Hidden: true},
		cli.StringFlag{Name: "kernel-memory-tcp", Usage: "(obsoleted; do not use)", Hidden: true},
		cli.StringFlag{Name: "memory", Usage: "memory limit (in bytes, or with a k, m, g suffix)"},
		cli.StringFlag{Name: "memory-reservation", Usage: "memory reservation or soft_limit (in bytes)"},
		cli.StringFlag{Name: "memory-swap", Usage: "total memory usage (memory + swap); set '-1' to enable unlimited swap"},
		cli.IntFlag{Name: "pids-limit", Usage: "maximum number of pids allowed in the container"},
		cli.StringFlag{Name: "l3-cache-schema", Usage: "the string of Intel RDT/CAT L3 cache schema (not supported)"},
		cli.StringFlag{Name: "mem-bw-schema", Usage: "the string of Intel RDT/MBA memory bandwidth schema (not supported)"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		r, err := updateResources(c)
		if err != nil {
			return err
		}
		ctr, err := getContainer(c)
		if err != nil {
			return err
		}
		return ctr.Update(r)
	},
}

// updateResources reads --resources, or builds the resources from the other
// flags. Only what is given is set; the engine leaves the rest as it is.
func updateResources(c *cli.Context) (*specs.LinuxResources, error) {
	if in := c.String("resources"); in != "" {
		f := os.Stdin
		if in != "-" {
			var err error
			if f, err = os.Open(in); err != nil {
				return nil, err
			}
			defer f.Close()
		}
		var r specs.LinuxResources
		if err := json.NewDecoder(f).Decode(&r); err != nil {
			return nil, fmt.Errorf("decode resources: %w", err)
		}
		unsetZeroWeights(&r)
		return &r, nil
	}
	if c.String("l3-cache-schema") != "" || c.String("mem-bw-schema") != "" {
		return nil, fmt.Errorf("intel RDT is not supported")
	}
	r := &specs.LinuxResources{}
	cpu := &specs.LinuxCPU{}
	mem := &specs.LinuxMemory{}

	if v := c.Int("blkio-weight"); v != 0 {
		w := uint16(v)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	cpu.Cpus = c.String("cpuset-cpus")
	cpu.Mems = c.String("cpuset-mems")
	if v := c.String("cpu-idle"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value for cpu-idle: %w", err)
		}
		cpu.Idle = &n
	}
	for _, u := range []struct {
		opt  string
		dest **uint64
	}{
		{"cpu-burst", &cpu.Burst},
		{"cpu-period", &cpu.Period},
		{"cpu-rt-period", &cpu.RealtimePeriod},
		{"cpu-share", &cpu.Shares},
	} {
		if v := c.String(u.opt); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", u.opt, err)
			}
			*u.dest = &n
		}
	}
	for _, s := range []struct {
		opt  string
		dest **int64
	}{
		{"cpu-quota", &cpu.Quota},
		{"cpu-rt-runtime", &cpu.RealtimeRuntime},
	} {
		if v := c.String(s.opt); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", s.opt, err)
			}
			*s.dest = &n
		}
	}
	for _, m := range []struct {
		opt  string
		dest **int64
	}{
		{"memory", &mem.Limit},
		{"memory-swap", &mem.Swap},
		{"memory-reservation", &mem.Reservation},
	} {
		if v := c.String(m.opt); v != "" {
			n, err := ramInBytes(v)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", m.opt, err)
			}
			*m.dest = &n
		}
	}
	if c.String("kernel-memory") != "" || c.String("kernel-memory-tcp") != "" {
		logrus.Warn("kernel memory settings are ignored and will be removed")
	}
	if c.IsSet("pids-limit") {
		n := int64(c.Int("pids-limit"))
		r.Pids = &specs.LinuxPids{Limit: &n}
	}
	// Lifting the memory limit lifts the swap limit with it, or the kernel
	// refuses a swap limit below the memory limit.
	if mem.Limit != nil && *mem.Limit == -1 && mem.Swap == nil {
		unlimited := int64(-1)
		mem.Swap = &unlimited
	}
	if *cpu != (specs.LinuxCPU{}) {
		r.CPU = cpu
	}
	if *mem != (specs.LinuxMemory{}) {
		r.Memory = mem
	}
	return r, nil
}

var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// ramInBytes parses a size like docker's units.RAMInBytes: a number with an
// optional binary k/m/g/t/p suffix; "-1" means unlimited.
func ramInBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size: %q", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size: %q", s)
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[strings.ToLower(m[2])]
	return int64(f * mult), nil
}
