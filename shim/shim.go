// Package shim is containerd's shim-process protocol for railcar: the
// `start` and `delete` actions containerd runs, the bootstrap handshake of
// every containerd since 1.6, the socket, pod grouping, and the long-lived
// server that hosts the task service (package task).
//
// containerd 2.4's pkg/shim.RunShim speaks only the new bootstrap protocol
// and fails under containerd 1.6/1.7, so this package drives the protocol
// itself and borrows only pkg/shim's socket and publisher helpers.
package shim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
)

// RuntimeName is the runtime type containerd knows the shim by.
const RuntimeName = "io.containerd.railcar.v2"

// Version is the shim's version, set at link time.
var Version = "dev"

// flags are the command line containerd gives every shim invocation:
//
//	shim -namespace NS -address GRPC -publish-binary CONTAINERD -id ID [-debug] [-bundle B] start|delete
//	shim -namespace NS -id ID -address GRPC [-debug]          (the server, started by `start`)
//	shim -info                                                (containerd 2.x probe)
type flags struct {
	namespace, id, address, publishBinary, bundle, socket string
	debug, version, info                                  bool
	action                                                string
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	var f flags
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.namespace, "namespace", "", "namespace that owns the shim")
	fs.StringVar(&f.id, "id", "", "id of the task")
	fs.StringVar(&f.address, "address", "", "grpc address back to main containerd")
	fs.StringVar(&f.publishBinary, "publish-binary", "", "containerd binary (unused: events go over ttrpc to $TTRPC_ADDRESS)")
	fs.StringVar(&f.bundle, "bundle", "", "bundle path, when not the working directory (delete)")
	fs.StringVar(&f.socket, "socket", "", "serve the task API on this socket path instead of fd 3")
	fs.StringVar(new(string), "debug-socket", "", "unused")
	fs.BoolVar(&f.debug, "debug", false, "debug logs")
	fs.BoolVar(&f.version, "v", false, "")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	// -info is a flag, not an action: older shims choke on unknown
	// actions in confusing ways (containerd's convention).
	fs.BoolVar(&f.info, "info", false, "read runtime options from stdin, print the runtime info protobuf, exit")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	f.action = fs.Arg(0)
	return &f, nil
}

// Run runs the shim for os.Args and exits.
func Run() {
	if err := run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "containerd-shim-railcar-v2: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(args []string) error {
	f, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	switch {
	case f.version:
		fmt.Printf("%s:\n  Version: %s\n  Runtime: %s\n", args[0], Version, RuntimeName)
		return nil
	case f.info:
		return writeInfo(os.Stdin, os.Stdout)
	}
	if f.namespace == "" {
		return fmt.Errorf("shim namespace cannot be empty")
	}
	if f.id == "" {
		return fmt.Errorf("shim id cannot be empty")
	}
	ctx := namespaces.WithNamespace(context.Background(), f.namespace)
	switch f.action {
	case "start":
		return start(ctx, f, os.Stdin, os.Stdout)
	case "delete":
		// containerd reads stdout as a protobuf: logs go to stderr.
		log.L.Logger.SetOutput(os.Stderr)
		return deleteAction(ctx, f, os.Stdout)
	case "":
		return serve(ctx, f)
	default:
		return fmt.Errorf("unknown action %q", f.action)
	}
}
