package shim

import (
	"bytes"
	"strings"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/typeurl/v2"
	gproto "google.golang.org/protobuf/proto"
)

func mustMarshal(t *testing.T, m gproto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadBootstrap(t *testing.T) {
	opts, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: "/etc/railcar.toml"})
	if err != nil {
		t.Fatal(err)
	}
	params := &bootapi.BootstrapParams{InstanceID: "c1", Namespace: "k8s.io"}
	if err := params.AddExtension(opts); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		in         []byte
		newProto   bool
		configPath string
	}{
		{name: "containerd 1.x, no options", in: nil},
		{name: "containerd 1.x, options", in: mustMarshal(t, opts), configPath: "/etc/railcar.toml"},
		{name: "containerd 2.3+", in: mustMarshal(t, params), newProto: true, configPath: "/etc/railcar.toml"},
		{name: "params of another task", in: mustMarshal(t, &bootapi.BootstrapParams{InstanceID: "other", Namespace: "k8s.io"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readBootstrap(bytes.NewReader(tc.in), "c1", "k8s.io")
			if err != nil {
				t.Fatal(err)
			}
			if got := b.params != nil; got != tc.newProto {
				t.Errorf("new protocol: got %v, want %v", got, tc.newProto)
			}
			if got := b.configPath(); got != tc.configPath {
				t.Errorf("config path: got %q, want %q", got, tc.configPath)
			}
			out, err := b.result("unix:///run/containerd/s/x")
			if err != nil {
				t.Fatal(err)
			}
			if tc.newProto {
				var r bootapi.BootstrapResult
				if err := proto.Unmarshal(out, &r); err != nil || r.Version != 3 || r.Address != "unix:///run/containerd/s/x" || r.Protocol != "ttrpc" {
					t.Errorf("result: got %+v, %v", &r, err)
				}
			} else if string(out) != "unix:///run/containerd/s/x" {
				t.Errorf("result: got %q, want the plain address", out)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	f, err := parseFlags(strings.Fields("shim -namespace ns -address /a.sock -publish-binary /bin/c -id x -debug start"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if f.namespace != "ns" || f.id != "x" || f.address != "/a.sock" || !f.debug || f.action != "start" {
		t.Errorf("got %+v", f)
	}
}
