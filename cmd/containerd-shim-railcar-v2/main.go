// Command containerd-shim-railcar-v2 is railcar's containerd shim
// (runtime_type io.containerd.railcar.v2). The same binary is re-executed
// as every container's init, so main checks for that first.
package main

import (
	"github.com/railcar-oci/railcar/linux/initproc"
	// The C constructor that puts a re-executed init into its namespaces
	// before the Go runtime starts.
	_ "github.com/railcar-oci/railcar/linux/nsenter"
	"github.com/railcar-oci/railcar/shim"
)

func main() {
	if initproc.IsInit() {
		initproc.Main()
	}
	shim.Run()
}
