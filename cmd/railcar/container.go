package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"

	"github.com/railcar-oci/railcar/linux"
)

// Flags shared by create and run.
var createFlags = []cli.Flag{
	cli.StringFlag{Name: "bundle, b", Usage: "path to the root of the bundle directory, defaults to the current directory"},
	cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"},
	cli.StringFlag{Name: "pid-file", Usage: "specify the file to write the process id to"},
	cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot root to jail process inside rootfs. This should be used whenever the rootfs is on top of a ramdisk"},
	cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring for the container. This will cause the container to inherit the calling processes session key"},
	cli.IntFlag{Name: "preserve-fds", Usage: "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"},
	cli.StringFlag{Name: "pidfd-socket", Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the init process"},
}

// startContainer creates the container of the bundle and, for run, starts
// it. Detached (create, run -d) it returns once that is done; in the
// foreground it forwards signals to the workload, waits for it, deletes
// the container unless --keep, and returns the workload's exit status.
func startContainer(c *cli.Context, run bool) (status int, retErr error) {
	id := c.Args().First()
	if err := validID(id); err != nil {
		return -1, err
	}
	pidFile, err := absFlag(c, "pid-file")
	if err != nil {
		return -1, err
	}
	consoleSocket, err := absFlag(c, "console-socket")
	if err != nil {
		return -1, err
	}
	pidfdSocket, err := absFlag(c, "pidfd-socket")
	if err != nil {
		return -1, err
	}
	bundle, err := bundleDir(c)
	if err != nil {
		return -1, err
	}
	// As runc does: relative paths of the config (root.path) are relative
	// to the bundle.
	if err := os.Chdir(bundle); err != nil {
		return -1, err
	}
	spec, err := loadSpec(specConfig)
	if err != nil {
		return -1, err
	}
	detach := !run || c.Bool("detach")
	if err := checkTerminal(detach, spec.Process.Terminal, consoleSocket); err != nil {
		return -1, err
	}
	files, err := extraFiles(c, spec.Process)
	if err != nil {
		return -1, err
	}

	var sig *signalHandler
	if !detach {
		sig = newSignalHandler()
		defer sig.stop()
	}
	stdio, onConsole, t, err := processIO(spec.Process.Terminal, detach)
	if err != nil {
		return -1, err
	}
	defer t.close()
	opts := linux.CreateOpts{
		Bundle:        bundle,
		Spec:          spec,
		Stdio:         stdio,
		OnConsole:     onConsole,
		ConsoleSocket: consoleSocket,
		ExtraFiles:    files,
		PidFile:       pidFile,
		NoPivot:       c.Bool("no-pivot"),
		NoNewKeyring:  c.Bool("no-new-keyring"),
	}

	e, err := newEngine(c)
	if err != nil {
		return -1, err
	}
	ctx := context.Background()
	ctr, err := e.Create(ctx, id, opts)
	if err != nil {
		return -1, err
	}
	pid := ctr.Pid()
	keep := !run || c.Bool("keep")
	defer func() {
		// A failed run leaves nothing behind; so does a finished
		// foreground run unless --keep.
		if retErr != nil || (!detach && !keep) {
			if err := ctr.Delete(ctx, true); err != nil {
				logrus.Warnf("delete container %s: %v", id, err)
			}
		}
	}()
	if pidfdSocket != "" {
		if err := sendPidfd(pidfdSocket, pid); err != nil {
			return -1, err
		}
	}
	if !run {
		return 0, nil
	}
	if err := ctr.Start(ctx); err != nil {
		return -1, err
	}
	if detach {
		return 0, nil
	}
	status = sig.forward(pid, t)
	t.close()
	return status, nil
}

// bundleDir is --bundle made absolute, or the working directory.
func bundleDir(c *cli.Context) (string, error) {
	b := c.String("bundle")
	if b == "" {
		return os.Getwd()
	}
	return filepath.Abs(b)
}

// checkTerminal refuses the terminal combinations runc refuses.
func checkTerminal(detach, terminal bool, consoleSocket string) error {
	if detach && terminal && consoleSocket == "" {
		return errors.New("cannot allocate tty if railcar will detach without setting console socket")
	}
	if (!detach || !terminal) && consoleSocket != "" {
		return errors.New("cannot use console socket if railcar will not detach or allocate tty")
	}
	return nil
}
