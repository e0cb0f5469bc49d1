package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
	"github.com/railcar-oci/railcar/linux/rootfs"
)

var featuresCommand = cli.Command{
	Name:      "features",
	Usage:     "show the enabled features",
	ArgsUsage: "",
	Description: `Show the enabled features as JSON, the type of the runtime spec's
features.md (https://github.com/opencontainers/runtime-spec/blob/main/features.md).`,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "    ")
		return enc.Encode(engineFeatures(c))
	},
}

// engineFeatures describes what the engine implements. A feature is listed
// only when a spec using it works; what the engine does not implement
// (Intel RDT, net devices, memory policy, RDMA) is
// reported as disabled or left out.
func engineFeatures(c *cli.Context) *features.Features {
	t, f := true, false
	annotations := map[string]string{"org.railcar-oci.railcar.version": c.App.Version}
	if commit := commitID(); commit != "" {
		annotations["org.railcar-oci.railcar.commit"] = commit
	}
	if seccomp.Enabled {
		major, minor, micro := seccomp.Version()
		annotations["io.github.seccomp.libseccomp.version"] = fmt.Sprintf("%d.%d.%d", major, minor, micro)
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  sorted(rootfs.KnownMountOptions()),
		Linux: &features.Linux{
			Namespaces: []string{
				string(specs.CgroupNamespace), string(specs.IPCNamespace), string(specs.MountNamespace),
				string(specs.NetworkNamespace), string(specs.PIDNamespace), string(specs.TimeNamespace),
				string(specs.UserNamespace), string(specs.UTSNamespace),
			},
			Capabilities: knownCapabilities(),
			Cgroup: &features.Cgroup{
				V1:          &t,
				V2:          &t,
				Systemd:     &t,
				SystemdUser: &f,
				Rdma:        &f,
			},
			Seccomp: seccompFeatures(),
			// Profiles and labels are applied when the host has
			// AppArmor or SELinux and refused with an error otherwise.
			Apparmor:        &features.Apparmor{Enabled: &t},
			Selinux:         &features.Selinux{Enabled: &t},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
			NetDevices:      &features.NetDevices{Enabled: &f},
		},
		Annotations:                        annotations,
		PotentiallyUnsafeConfigAnnotations: []string{linux.InitAnnotation},
	}
}

// knownCapabilities lists the capabilities this build knows by name, in
// the spec's CAP_ form.
func knownCapabilities() []string {
	var caps []string
	for _, c := range capability.ListKnown() {
		caps = append(caps, "CAP_"+strings.ToUpper(c.String()))
	}
	slices.Sort(caps)
	return caps
}

// seccompFeatures is the seccomp support of the engine, which compiles
// filters with runc's libcontainer/seccomp (libseccomp): nil in a build
// without it, where a spec with a profile is refused.
func seccompFeatures() *features.Seccomp {
	if !seccomp.Enabled {
		return nil
	}
	t := true
	return &features.Seccomp{
		Enabled:        &t,
		Actions:        seccomp.KnownActions(),
		Operators:      seccomp.KnownOperators(),
		Archs:          seccomp.KnownArchs(),
		KnownFlags:     seccomp.KnownFlags(),
		SupportedFlags: seccomp.SupportedFlags(),
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
