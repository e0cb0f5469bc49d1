// Package initproc is the container side of railcar: the code a re-executed
// railcar binary runs once package nsenter has put it into the container's
// namespaces. It sets up the root filesystem, the console and the process
// attributes, waits for `start`, and execs the workload (or, in rc-init mode,
// forks it and stays as PID 1).
package initproc

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// EnvInit names the fd of the init socket; package nsenter reads it too.
const EnvInit = "_RAILCAR_INIT"

// Config is what the parent sends the init (msg.KindConfig).
type Config struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	// Rootfs is the host path of the root filesystem.
	Rootfs string      `json:"rootfs"`
	Spec   *specs.Spec `json:"spec"`
	// Process is what runs: Spec.Process for the init, the exec'd process
	// otherwise.
	Process *specs.Process `json:"process"`
	// Exec is set for `exec`: no root filesystem work, no start wait.
	Exec bool `json:"exec,omitempty"`
	// ExecRoot is, for exec into a container without a mount namespace of
	// its own, the init's root as the host sees it (/proc/PID/root): the
	// exec'd process is chrooted there, as the init is.
	ExecRoot     string `json:"execRoot,omitempty"`
	NoPivot      bool   `json:"noPivot,omitempty"`
	NoNewKeyring bool   `json:"noNewKeyring,omitempty"`
	// InitMode runs rc-init as PID 1 with the workload as its child.
	InitMode bool `json:"initMode,omitempty"`
	// ExtraFiles is how many fds from 3 on go to the workload.
	ExtraFiles int `json:"extraFiles"`
	// FifoFD is the O_PATH fd of the exec fifo (init only).
	FifoFD int `json:"fifoFd,omitempty"`
	// IDMapped lists the Spec.Mounts indexes of the id-mapped mounts whose
	// detached trees come with this message, in order.
	IDMapped []int `json:"idMapped,omitempty"`
}

// Console is the data of msg.KindConsole.
type Console struct {
	Slave string `json:"slave"`
}
