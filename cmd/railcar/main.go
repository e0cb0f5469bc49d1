// Command railcar is an OCI runtime command line with runc's commands, flags
// and exit codes, on top of railcar's engine (package linux).
//
// The same binary is re-executed as every container's init, so main checks
// for that before anything else.
package main

import (
	"os"

	"github.com/railcar-oci/railcar/linux/initproc"
	// The C constructor that puts a re-executed init into its namespaces
	// before the Go runtime starts.
	_ "github.com/railcar-oci/railcar/linux/nsenter"
)

func main() {
	// A re-executed init must not parse railcar's command line: it runs
	// the container and never returns.
	if initproc.IsInit() {
		initproc.Main()
	}
	os.Exit(run(os.Args))
}
