package shim

import (
	"fmt"
	"io"
	"slices"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/railcar-oci/railcar/linux/rootfs"
)

// writeInfo answers `-info`: containerd 2.x asks every runtime for its
// name, version and OCI features (used e.g. by CRI to decide on user
// namespaces). stdin may carry the runtime options, echoed back.
func writeInfo(stdin io.Reader, stdout io.Writer) error {
	info := &types.RuntimeInfo{
		Name:    RuntimeName,
		Version: &types.RuntimeVersion{Version: Version},
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxBootstrap))
	if err != nil {
		return fmt.Errorf("read runtime options: %w", err)
	}
	if len(data) > 0 {
		var a anypb.Any
		if err := proto.Unmarshal(data, &a); err != nil {
			return fmt.Errorf("decode runtime options: %w", err)
		}
		info.Options = &a
	}
	feat, err := typeurl.MarshalAnyToProto(runtimeFeatures())
	if err != nil {
		return fmt.Errorf("marshal features: %w", err)
	}
	info.Features = feat
	out, err := proto.Marshal(info)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// runtimeFeatures is the part of runtime-spec's features.md the shim can
// state without probing the machine. containerd's CRI reads two things
// from it: the mount option "rro" (RuntimeHandlerFeatures.RecursiveReadOnlyMounts,
// when the kernel has mount_setattr too) and the namespace "user" together
// with mountExtensions.idmap (RuntimeHandlerFeatures.UserNamespaces).
func runtimeFeatures() *features.Features {
	t := true
	opts := rootfs.KnownMountOptions()
	slices.Sort(opts)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces: []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Cgroup:     &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: &t},
			// The engine makes id-mapped bind mounts (idmap, ridmap and
			// per-mount uidMappings/gidMappings; linux/idmap.go).
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
		},
		Annotations: map[string]string{"run.railcar.init": "rc-init as PID 1 when true"},
	}
}
