package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

// criuFlags are runc's checkpoint flags.
var criuFlags = []cli.Flag{
	cli.StringFlag{Name: "image-path", Usage: "path for saving criu image files"},
	cli.StringFlag{Name: "work-path", Usage: "path for saving work files and logs"},
	cli.StringFlag{Name: "parent-path", Usage: "path for previous criu image files in pre-dump"},
	cli.BoolFlag{Name: "leave-running", Usage: "leave the process running after checkpointing"},
	cli.BoolFlag{Name: "tcp-established", Usage: "allow open tcp connections"},
	cli.BoolFlag{Name: "tcp-skip-in-flight", Usage: "skip in-flight tcp connections"},
	cli.BoolFlag{Name: "link-remap", Usage: "allow one to link unlinked files back when possible"},
	cli.BoolFlag{Name: "ext-unix-sk", Usage: "allow external unix sockets"},
	cli.BoolFlag{Name: "shell-job", Usage: "allow shell jobs"},
	cli.BoolFlag{Name: "lazy-pages", Usage: "use userfaultfd to lazily restore memory pages"},
	cli.IntFlag{Name: "status-fd", Value: -1, Usage: "criu writes \\0 to this FD once lazy-pages is ready"},
	cli.StringFlag{Name: "page-server", Usage: "ADDRESS:PORT of the page server"},
	cli.BoolFlag{Name: "file-locks", Usage: "handle file locks, for safety"},
	cli.BoolFlag{Name: "pre-dump", Usage: "dump container's memory information only, leave the container running after this"},
	cli.StringFlag{Name: "manage-cgroups-mode", Usage: "cgroups mode: soft|full|strict|ignore (default: soft)"},
	cli.StringSliceFlag{Name: "empty-ns", Usage: "create a namespace, but don't restore its properties"},
	cli.BoolFlag{Name: "auto-dedup", Usage: "enable auto deduplication of memory images"},
}

// restoreFlags are runc's restore flags.
var restoreFlags = []cli.Flag{
	cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"},
	cli.StringFlag{Name: "image-path", Usage: "path to criu image files for restoring"},
	cli.StringFlag{Name: "work-path", Usage: "path for saving work files and logs"},
	cli.BoolFlag{Name: "tcp-established", Usage: "allow open tcp connections"},
	cli.BoolFlag{Name: "ext-unix-sk", Usage: "allow external unix sockets"},
	cli.BoolFlag{Name: "shell-job", Usage: "allow shell jobs"},
	cli.BoolFlag{Name: "file-locks", Usage: "handle file locks, for safety"},
	cli.StringFlag{Name: "manage-cgroups-mode", Usage: "cgroups mode: soft|full|strict|ignore (default: soft)"},
	cli.StringFlag{Name: "bundle, b", Usage: "path to the root of the bundle directory"},
	cli.BoolFlag{Name: "detach, d", Usage: "detach from the container's process"},
	cli.StringFlag{Name: "pid-file", Usage: "specify the file to write the process id to"},
	cli.BoolFlag{Name: "no-subreaper", Usage: "disable the use of the subreaper used to reap reparented processes"},
	cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot root to jail process inside rootfs (accepted for compatibility: criu restores the root)"},
	cli.StringSliceFlag{Name: "empty-ns", Usage: "create a namespace, but don't restore its properties"},
	cli.BoolFlag{Name: "auto-dedup", Usage: "enable auto deduplication of memory images"},
	cli.BoolFlag{Name: "lazy-pages", Usage: "use userfaultfd to lazily restore memory pages"},
	cli.StringFlag{Name: "lsm-profile", Usage: "Specify an LSM profile to be used during restore in the form of TYPE:NAME (not supported)"},
	cli.StringFlag{Name: "lsm-mount-context", Usage: "Specify an LSM mount context to be used during restore (not supported)"},
}

var checkpointCommand = cli.Command{
	Name:  "checkpoint",
	Usage: "checkpoint a running container",
	ArgsUsage: `<container-id>

Where "<container-id>" is the name for the instance of the container to be
checkpointed.`,
	Description: `The checkpoint command saves the state of the container instance with criu.
Unless --leave-running or --pre-dump is given, the container is gone afterwards.`,
	Flags: criuFlags,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		ctr, err := getContainer(c)
		if err != nil {
			return err
		}
		switch st := ctr.Status(); st {
		case linux.Created, linux.Stopped:
			return fmt.Errorf("container cannot be checkpointed in %s state", st)
		}
		opts, err := criuOptions(c, true)
		if err != nil {
			return err
		}
		if fd := c.Int("status-fd"); fd >= 0 && opts.LazyPages {
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			if err != nil {
				return fmt.Errorf("invalid --status-fd argument %d: %w", fd, err)
			}
			if flags&(unix.O_WRONLY|unix.O_RDWR) == 0 {
				return fmt.Errorf("invalid --status-fd argument %d: not writable", fd)
			}
			opts.StatusFile = os.NewFile(uintptr(fd), "status-fd")
		}
		ctx := context.Background()
		if err := ctr.Checkpoint(ctx, opts); err != nil {
			return err
		}
		if !opts.LeaveRunning && !opts.PreDump {
			// criu killed the processes; remove what is left, as runc
			// does.
			if err := ctr.Delete(ctx, true); err != nil {
				logrus.Warnf("delete checkpointed container: %v", err)
			}
		}
		return nil
	},
}

var restoreCommand = cli.Command{
	Name:  "restore",
	Usage: "restore a container from a previous checkpoint",
	ArgsUsage: `<container-id>

Where "<container-id>" is the name for the instance of the container to be
restored.`,
	Description: `Restores the saved state of the container instance that was previously saved
using the railcar (or runc) checkpoint command. In the foreground railcar
forwards signals to the restored process and exits with its status.`,
	Flags: restoreFlags,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		status, err := restoreContainer(c)
		if err != nil {
			return fmt.Errorf("restore failed: %w", err)
		}
		return &exitError{code: status}
	},
}

// criuOptions turns the flags into the engine's options. The image path
// defaults to ./checkpoint, as runc's; checkpoint creates it.
func criuOptions(c *cli.Context, checkpoint bool) (linux.CriuOpts, error) {
	image, err := absFlag(c, "image-path")
	if err != nil {
		return linux.CriuOpts{}, err
	}
	if image == "" {
		wd, err := os.Getwd()
		if err != nil {
			return linux.CriuOpts{}, err
		}
		image = filepath.Join(wd, "checkpoint")
	}
	work, err := absFlag(c, "work-path")
	if err != nil {
		return linux.CriuOpts{}, err
	}
	o := linux.CriuOpts{
		ImagePath:         image,
		WorkPath:          work,
		CriuPath:          c.GlobalString("criu"),
		TCPEstablished:    c.Bool("tcp-established"),
		ExtUnixSk:         c.Bool("ext-unix-sk"),
		ShellJob:          c.Bool("shell-job"),
		FileLocks:         c.Bool("file-locks"),
		AutoDedup:         c.Bool("auto-dedup"),
		LazyPages:         c.Bool("lazy-pages"),
		ManageCgroupsMode: c.String("manage-cgroups-mode"),
		EmptyNs:           c.StringSlice("empty-ns"),
	}
	if checkpoint {
		o.LeaveRunning = c.Bool("leave-running")
		o.TCPSkipInFlight = c.Bool("tcp-skip-in-flight")
		o.LinkRemap = c.Bool("link-remap")
		o.PreDump = c.Bool("pre-dump")
		o.PageServer = c.String("page-server")
		if p := c.String("parent-path"); p != "" {
			if filepath.IsAbs(p) {
				return o, errors.New("--parent-path must be relative")
			}
			fi, err := os.Stat(filepath.Join(image, p))
			if err == nil && !fi.IsDir() {
				err = fmt.Errorf("%s is not a directory", p)
			}
			if err != nil {
				return o, fmt.Errorf("invalid --parent-path: %w", err)
			}
			o.ParentPath = p
		}
		return o, nil
	}
	if c.String("lsm-profile") != "" || c.String("lsm-mount-context") != "" {
		return o, errors.New("--lsm-profile and --lsm-mount-context are not supported")
	}
	if _, err := os.Stat(image); err != nil {
		return o, fmt.Errorf("checkpoint images: %w", err)
	}
	return o, nil
}

// restoreContainer restores the container and, in the foreground, forwards
// signals to it until it exits, then deletes it; it returns its status.
func restoreContainer(c *cli.Context) (status int, retErr error) {
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
	opts, err := criuOptions(c, false)
	if err != nil {
		return -1, err
	}
	bundle, err := bundleDir(c)
	if err != nil {
		return -1, err
	}
	if err := os.Chdir(bundle); err != nil {
		return -1, err
	}
	spec, err := loadSpec(specConfig)
	if err != nil {
		return -1, err
	}
	detach := c.Bool("detach")
	if err := checkTerminal(detach, spec.Process.Terminal, consoleSocket); err != nil {
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
	ro := linux.RestoreOpts{
		Bundle:        bundle,
		Spec:          spec,
		Stdio:         stdio,
		OnConsole:     onConsole,
		ConsoleSocket: consoleSocket,
		PidFile:       pidFile,
		Criu:          opts,
	}
	e, err := newEngine(c)
	if err != nil {
		return -1, err
	}
	ctx := context.Background()
	ctr, err := e.Restore(ctx, id, ro)
	if err != nil {
		return -1, err
	}
	if detach {
		return 0, nil
	}
	defer func() {
		if err := ctr.Delete(ctx, true); err != nil {
			logrus.Warnf("delete container %s: %v", id, err)
		}
	}()
	status = sig.forward(ctr.Pid(), t)
	t.close()
	return status, nil
}
