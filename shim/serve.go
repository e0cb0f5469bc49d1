package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/fifo"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/task"
)

// lean keeps the long-lived shim small, one per container or pod: a lower
// GC target than Go's default, memory handed back to the kernel while the
// shim idles, and few Go threads (containerd's own shims do the same).
// GOGC and GOMAXPROCS in the environment win.
func lean() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(40)
	}
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 2 {
		runtime.GOMAXPROCS(2)
	}
	go func() {
		for range time.Tick(30 * time.Second) {
			debug.FreeOSMemory()
		}
	}()
}

// serve is the long-lived shim: it serves the task API on the socket that
// `start` passed as fd 3 until containerd shuts it down.
func serve(ctx context.Context, f *flags) error {
	lean()
	// Logs go to the bundle's `log` fifo, which containerd copies into its
	// own log. It is dup'ed onto stderr so that anything written there
	// (engine warnings, panics) lands in the same place.
	logf, err := fifo.OpenFifoDup2(ctx, "log", unix.O_WRONLY, 0o700, int(os.Stderr.Fd()))
	if err != nil {
		return fmt.Errorf("open shim log: %w", err)
	}
	defer logf.Close()
	cfg, cerr := task.LoadConfig("")
	setupLogging(logf, f.debug, cfg.LogLevel)
	logger := log.G(ctx).WithField("pid", os.Getpid()).WithField("namespace", f.namespace)
	if cerr != nil {
		// Serve anyway: Create reports the error for each container.
		logger.WithError(cerr).Error("shim config")
	}

	// The shim reaps the containers' inits and execs (created as its
	// children) and whatever they orphan.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	// A write to the log fifo after containerd went away must not kill the
	// shim: with SIGPIPE handled, Go returns EPIPE instead.
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reaper := task.NewReaper()
	go reaper.Run(ctx.Done())

	publisher, err := shim.NewPublisher(os.Getenv("TTRPC_ADDRESS"))
	if err != nil {
		return fmt.Errorf("events publisher: %w", err)
	}
	defer publisher.Close()

	svc := task.New(ctx, task.Options{
		Namespace: f.namespace,
		Publisher: publisher,
		Reaper:    reaper,
		Config:    cfg,
		Shutdown:  cancel,
	})
	server, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		return fmt.Errorf("ttrpc server: %w", err)
	}
	if err := svc.RegisterTTRPC(server); err != nil {
		return err
	}
	l, err := listener(f.socket)
	if err != nil {
		return err
	}
	// Remember the path now: with grouping, the bundle whose `address`
	// file named it may be gone by the time the shim exits.
	socketPath := ""
	if a, isUnix := l.Addr().(*net.UnixAddr); isUnix {
		socketPath = a.Name
	}
	go func() {
		// Not ctx: requests still in flight when the shim shuts down
		// finish with their own contexts; server.Shutdown below waits
		// for them.
		if err := server.Serve(context.WithoutCancel(ctx), l); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, ttrpc.ErrServerClosed) {
			logger.WithError(err).Error("ttrpc server")
			cancel()
		}
	}()
	logger.Debug("serving")

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	select {
	case <-ctx.Done():
	case s := <-sigs:
		logger.WithField("signal", s).Info("exit on signal")
		cancel()
	}

	// Let the Shutdown call that got us here return its reply.
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = server.Shutdown(sctx)
	scancel()
	server.Close()
	removeSocket(socketPath)
	svc.Close()
	return nil
}

func listener(path string) (net.Listener, error) {
	if path != "" {
		return net.Listen("unix", path)
	}
	f := os.NewFile(3, "socket")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("socket from fd 3: %w", err)
	}
	return l, nil
}

func removeSocket(path string) {
	if path != "" && !strings.HasPrefix(path, "@") {
		_ = os.Remove(path)
		return
	}
	if address, err := shim.ReadAddress("address"); err == nil {
		_ = shim.RemoveSocket(address)
	}
}

func setupLogging(out io.Writer, debug bool, level string) {
	_ = log.SetFormat(log.TextFormat)
	log.L.Logger.SetOutput(out)
	switch {
	case level != "":
		_ = log.SetLevel(level)
	case debug:
		_ = log.SetLevel("debug")
	}
}
