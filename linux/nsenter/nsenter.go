// Package nsenter puts a re-executed railcar init into its namespaces before
// the Go runtime starts (a C constructor, see nsenter.c). Go programs are
// multithreaded before main, and setns(2) into a user or mount namespace
// requires a single-threaded caller, so this has to run first. Import it for
// its side effect from every main package that can be re-executed as an init.
//
// The protocol over the SOCK_SEQPACKET socket whose fd is in $_RAILCAR_INIT:
//
//	parent (railcar / shim)                 child (this constructor)
//	-----------------------                 ------------------------
//	exec self, child in the cgroup
//	"join <ns> <path>\n"...  ------------>  open every path, setns user first,
//	"new <ns>\n"...                         then the others, mnt last
//	"timens <offsets>\n" "end\n"
//	                                        unshare(CLONE_NEWUSER) if new
//	write uid_map/gid_map   <------------   "userns"
//	                        ------------>   "mapped"; setresuid(0)
//	                                        unshare(the other new ones),
//	                                        write timens_offsets
//	                                        clone(CLONE_PARENT) -> grandchild
//	wait the child, note pid <-----------   "pid <N>"; the child exits
//	                                        grandchild: Go runtime starts,
//	                                        package initproc takes over (JSON
//	                                        messages, see linux/msg)
//
// Any failure is sent as "error <text>" and the process exits 1.
package nsenter

// #cgo CFLAGS: -Wall -O2
import "C"
