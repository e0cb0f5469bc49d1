package linux

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are the device cgroup rules every container gets after
// the spec's own, as with runc: the devices the runtime always creates, and
// the pty ones.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // /dev/null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // /dev/zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"}, // /dev/full
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"}, // /dev/tty
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"}, // /dev/random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"}, // /dev/urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}, // /dev/ptmx
	{Allow: true, Type: "c", Major: i64(136), Minor: nil, Access: "rwm"},  // /dev/pts/*
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"}, // /dev/console
}

// deviceRules returns the rules the cgroup gets: the spec's, then the
// defaults, then one per spec device so what is created can be used.
func deviceRules(s *specs.Spec) []specs.LinuxDeviceCgroup {
	var rules []specs.LinuxDeviceCgroup
	if s.Linux.Resources != nil {
		rules = append(rules, s.Linux.Resources.Devices...)
	}
	rules = append(rules, defaultDeviceRules...)
	for _, d := range s.Linux.Devices {
		if d.Type == "p" {
			continue // fifos are not under the device cgroup
		}
		typ := d.Type
		if typ == "u" {
			typ = "c" // unbuffered is a character device
		}
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	return rules
}
