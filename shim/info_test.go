package shim

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// TestInfoFeatures decodes `-info` as containerd 2.x does and applies the
// CRI plugin's tests: recursive read-only mounts need the mount option
// "rro"; user namespaces need the namespace "user" and idmap mounts.
func TestInfoFeatures(t *testing.T) {
	var out bytes.Buffer
	if err := writeInfo(bytes.NewReader(nil), &out); err != nil {
		t.Fatal(err)
	}
	var info types.RuntimeInfo
	if err := proto.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != RuntimeName || info.Features == nil {
		t.Fatalf("info: name %q, features %v", info.Name, info.Features)
	}
	var f features.Features
	if err := json.Unmarshal(info.Features.GetValue(), &f); err != nil {
		t.Fatalf("features: %v", err)
	}
	if !slices.Contains(f.MountOptions, "rro") {
		t.Errorf("mountOptions lack rro: %v", f.MountOptions)
	}
	if f.Linux == nil || !slices.Contains(f.Linux.Namespaces, "user") {
		t.Fatalf("linux.namespaces lack user: %+v", f.Linux)
	}
	m := f.Linux.MountExtensions
	if m == nil || m.IDMap == nil || m.IDMap.Enabled == nil || !*m.IDMap.Enabled {
		t.Errorf("linux.mountExtensions.idmap not enabled: %+v", m)
	}
}
