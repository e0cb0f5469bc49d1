package shim

import (
	"fmt"
	"io"
	"strings"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The start handshake differs by containerd version (all run `shim ...
// start` with the bundle as working directory):
//
//	containerd   stdin                               stdout it accepts
//	1.6, 1.7     nothing, or a protobuf Any with     "unix:///…" or JSON {version<=2}
//	             the runtime options
//	2.0–2.2      like 1.7                            plain, or JSON {version 2|3}
//	2.3+         protobuf BootstrapParams            protobuf BootstrapResult (v3),
//	                                                 or plain
//
// A BootstrapParams is recognised by decoding and by its instance id and
// namespace matching the command line; anything else is the old protocol.
type bootstrap struct {
	// params is nil for the old protocol.
	params *bootapi.BootstrapParams
	// options are the runtime options (runtimeoptions.v1.Options for
	// railcar), if containerd sent any.
	options *anypb.Any
}

const maxBootstrap = 10 << 20

func readBootstrap(r io.Reader, id, ns string) (bootstrap, error) {
	input, err := io.ReadAll(io.LimitReader(r, maxBootstrap))
	if err != nil {
		return bootstrap{}, fmt.Errorf("read bootstrap parameters: %w", err)
	}
	if len(input) == 0 {
		return bootstrap{}, nil
	}
	var p bootapi.BootstrapParams
	if err := proto.Unmarshal(input, &p); err == nil && p.GetInstanceID() == id && p.GetNamespace() == ns {
		b := bootstrap{params: &p}
		for _, ext := range p.GetExtensions() {
			if v := ext.GetValue(); v != nil && isRuntimeOptions(v) {
				b.options = v
			}
		}
		return b, nil
	}
	var a anypb.Any
	if err := proto.Unmarshal(input, &a); err != nil {
		return bootstrap{}, fmt.Errorf("decode runtime options from stdin: %w", err)
	}
	return bootstrap{options: &a}, nil
}

func isRuntimeOptions(a *anypb.Any) bool {
	return strings.HasSuffix(a.GetTypeUrl(), "runtimeoptions.v1.Options")
}

// configPath is the runtime's ConfigPath, if the options carry one.
func (b bootstrap) configPath() string {
	if b.options == nil || !isRuntimeOptions(b.options) {
		return ""
	}
	var o runtimeoptions.Options
	if err := proto.Unmarshal(b.options.GetValue(), &o); err != nil {
		return ""
	}
	return o.GetConfigPath()
}

// result is what `start` prints: the protocol containerd spoke decides.
func (b bootstrap) result(address string) ([]byte, error) {
	if b.params == nil {
		return []byte(address), nil
	}
	return proto.Marshal(&bootapi.BootstrapResult{Version: 3, Address: address, Protocol: "ttrpc"})
}
