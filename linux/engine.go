// Package linux is railcar's engine: it creates and runs OCI containers on
// Linux. It serves both the railcar CLI and the containerd shim, and knows
// nothing of containerd, ttrpc or grpc.
//
// The facade is Engine (a state root) and Container (one container in it).
// All container setup runs in this process and in a re-execution of the
// current binary (the init, see package initproc); no other runtime binary is
// ever executed.
package linux

import (
	"os"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultRoot is where container state lives unless Config.Root says otherwise.
const DefaultRoot = "/run/railcar"

// InitAnnotation selects the rc-init mode for one container: a separate init
// ("rc-init") runs as PID 1, reaps zombies, forwards signals to the workload
// and exits with its status. Values: "true"/"1" on, anything else off.
const InitAnnotation = "run.railcar.init"

// Monitor starts and waits for the helper processes the engine runs (the
// re-executed init before it becomes the container, hooks). A caller that
// owns every wait4 (the shim's reaper) supplies its own; the default calls
// cmd.Start and cmd.Wait.
type Monitor interface {
	Start(cmd *exec.Cmd) (chan int, error)
	Wait(cmd *exec.Cmd, ch chan int) (int, error)
}

// Config configures an Engine.
type Config struct {
	// Root is the state directory (runc's --root). Default DefaultRoot.
	Root string
	// SystemdCgroup selects the systemd cgroup driver (cgroupsPath
	// "slice:prefix:name").
	SystemdCgroup bool
	// Monitor runs helper processes; nil means cmd.Start/cmd.Wait.
	Monitor Monitor
	// InitMode makes rc-init the default for every container of this engine
	// (the annotation still decides per container when present).
	InitMode bool
}

// Stdio is the workload's standard streams. Nil entries inherit nothing: the
// init opens /dev/null for them.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateOpts are the options of Engine.Create.
type CreateOpts struct {
	// Bundle is the bundle directory (holds config.json unless Spec is set).
	Bundle string
	// Spec, when set, is used instead of reading Bundle/config.json.
	Spec *specs.Spec
	// Stdio for the container process (ignored for the terminal's streams
	// when Spec.Process.Terminal is set).
	Stdio Stdio
	// ConsoleSocket is the AF_UNIX socket path that receives the pty master
	// (runc's --console-socket) when Spec.Process.Terminal is set.
	ConsoleSocket string
	// OnConsole receives the pty master instead of ConsoleSocket. The
	// engine closes master when OnConsole returns: keep a dup.
	OnConsole func(master *os.File) error
	// ExtraFiles are passed to the workload as fds 3.. (runc --preserve-fds);
	// LISTEN_FDS is kept as the caller set it in the spec's env.
	ExtraFiles []*os.File
	// PidFile, when set, receives the init's host pid.
	PidFile string
	// NoPivot uses chroot after MS_MOVE instead of pivot_root.
	NoPivot bool
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool
}

// ExecOpts are the options of Container.Exec.
type ExecOpts struct {
	Process       *specs.Process
	Stdio         Stdio
	ConsoleSocket string
	OnConsole     func(master *os.File) error
	ExtraFiles    []*os.File
	PidFile       string
}

// Status is the OCI status of a container.
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Stopped  Status = "stopped"
	Paused   Status = "paused"
)

// State is what `railcar state` prints: the OCI state plus runc's extras.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}
