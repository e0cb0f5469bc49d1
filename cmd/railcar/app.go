package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

// version and gitCommit are set at build time with
// -ldflags "-X main.version=... -X main.gitCommit=...".
var (
	version   = "0.1.0-dev"
	gitCommit = ""
)

const usage = `Open Container Initiative runtime

railcar creates and runs containers from OCI bundles. Its commands, flags and
exit codes are runc's, so it can stand in for runc under containerd's runc
shim, docker and podman.

To start a new instance of a container:

    # railcar run [ -b bundle ] <container-id>

The bundle is a directory holding config.json and the root filesystem; it
defaults to the current directory.`

// newApp returns the command line: global flags and one command per verb.
func newApp() *cli.App {
	app := cli.NewApp()
	app.Name = "railcar"
	app.Usage = usage
	app.Version = version
	cli.VersionPrinter = printVersion

	app.Flags = []cli.Flag{
		cli.BoolFlag{Name: "debug", Usage: "enable debug logging"},
		cli.StringFlag{Name: "log", Usage: "set the log file to write railcar logs to (default is '/dev/stderr')"},
		cli.StringFlag{Name: "log-format", Value: "text", Usage: "set the log format ('text' (default), or 'json')"},
		cli.StringFlag{Name: "root", Value: linux.DefaultRoot, Usage: "root directory for storage of container state (this should be located in tmpfs)"},
		cli.BoolFlag{Name: "systemd-cgroup", Usage: "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\""},
		cli.BoolFlag{Name: "init", Usage: "run a separate init (rc-init) as PID 1 that reaps zombies and forwards signals to the process, for containers created by this call (the run.railcar.init annotation decides per container)"},
		cli.StringFlag{Name: "criu", Value: "criu", Usage: "path to the criu binary used for checkpoint and restore"},
		cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors ('true', 'false', or 'auto') (accepted for compatibility)"},
	}
	app.Commands = []cli.Command{
		checkpointCommand,
		createCommand,
		deleteCommand,
		eventsCommand,
		execCommand,
		featuresCommand,
		killCommand,
		listCommand,
		pauseCommand,
		psCommand,
		restoreCommand,
		resumeCommand,
		runCommand,
		specCommand,
		startCommand,
		stateCommand,
		updateCommand,
	}
	// Usage errors are reported like every other error: one line, exit 1,
	// no help text in the way of callers that parse our output.
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return err }
	for i := range app.Commands {
		app.Commands[i].OnUsageError = app.OnUsageError
	}
	app.Before = func(c *cli.Context) error {
		if err := reviseRoot(c); err != nil {
			return err
		}
		if err := configureLogging(c); err != nil {
			return err
		}
		logrus.Debugf("railcar %s", strings.Join(os.Args[1:], " "))
		return nil
	}
	return app
}

// run runs the command line and returns the process exit status.
func run(args []string) int {
	closeInheritedFds()
	app := newApp()
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			report(ee.err)
		}
		return ee.code
	}
	report(err)
	return 1
}

// exitError ends railcar with code; err, when set, is reported first. run
// and exec use it to hand back the workload's exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitError) Unwrap() error { return e.err }

// report writes err as one line to stderr and, when --log names a file, to
// the log (containerd's runc shim reads the last error from a JSON log).
func report(err error) {
	msg := oneLine(err.Error())
	if logToFile {
		logrus.Error(msg)
	}
	fmt.Fprintln(os.Stderr, "railcar: "+msg)
}

// oneLine folds a multi-line message (hook output, say) into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}

// reviseRoot makes --root absolute, as runc does, so that it survives the
// chdir into the bundle.
func reviseRoot(c *cli.Context) error {
	root, err := filepath.Abs(c.GlobalString("root"))
	if err != nil {
		return err
	}
	if root == "/" {
		return errors.New("option --root argument should not be set to /")
	}
	return c.GlobalSet("root", root)
}

func printVersion(c *cli.Context) {
	w := c.App.Writer
	fmt.Fprintln(w, "railcar version", c.App.Version)
	if commit := commitID(); commit != "" {
		fmt.Fprintln(w, "commit:", commit)
	}
	fmt.Fprintln(w, "spec:", specs.Version)
	fmt.Fprintln(w, "go:", runtime.Version())
}

// commitID is gitCommit, or the VCS revision the go command recorded.
func commitID() string {
	if gitCommit != "" {
		return gitCommit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
