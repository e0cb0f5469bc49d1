package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// TestLogFile: a file:// log URI gets stdout and stderr appended.
func TestLogFile(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		path := filepath.Join(t.TempDir(), "ctr.log")
		c := e.newContainer(runtime, "logfile", []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2"})
		task, err := c.NewTask(e.ctx, cio.LogFile(path))
		ok(t, err)
		exits, err := task.Wait(e.ctx)
		ok(t, err)
		ok(t, task.Start(e.ctx))
		if got := e.finishTask(task, exits); got != 0 {
			t.Errorf("exit status: got %d", got)
		}
		data, err := os.ReadFile(path)
		ok(t, err)
		for _, want := range []string{"to-stdout\n", "to-stderr\n"} {
			if !strings.Contains(string(data), want) {
				t.Errorf("log file %q lacks %q", data, want)
			}
		}
	})
}

// loggerScript is a containerd logging binary: stdout on fd 3, stderr on
// fd 4, readiness by closing fd 5.
const loggerScript = `#!/bin/sh
out="$1"
exec 5>&-
cat <&3 >"$out.stdout" &
cat <&4 >"$out.stderr"
wait
`

// TestLogBinary: a binary:// log URI hands the output to a logging binary.
func TestLogBinary(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		dir := t.TempDir()
		logger := filepath.Join(dir, "logger.sh")
		ok(t, os.WriteFile(logger, []byte(loggerScript), 0o755))
		base := filepath.Join(dir, "out")
		c := e.newContainer(runtime, "logbin", []string{"sh", "-c", "echo bin-stdout; echo bin-stderr >&2; sleep 0.2"})
		task, err := c.NewTask(e.ctx, cio.BinaryIO(logger, map[string]string{base: ""}))
		ok(t, err)
		exits, err := task.Wait(e.ctx)
		ok(t, err)
		ok(t, task.Start(e.ctx))
		e.waitExit(exits, 20*time.Second)
		eventually(t, 10*time.Second, "the logger to write both streams", func() bool {
			o, _ := os.ReadFile(base + ".stdout")
			r, _ := os.ReadFile(base + ".stderr")
			return string(o) == "bin-stdout\n" && string(r) == "bin-stderr\n"
		})
		_, err = task.Delete(e.ctx)
		ok(t, err)
	})
}

// TestLogBinaryTerminal: a terminal's output goes to the logging binary's
// stdout.
func TestLogBinaryTerminal(t *testing.T) {
	runtimes(t, func(t *testing.T, runtime string) {
		e := newEnv(t)
		dir := t.TempDir()
		logger := filepath.Join(dir, "logger.sh")
		ok(t, os.WriteFile(logger, []byte(loggerScript), 0o755))
		base := filepath.Join(dir, "out")
		c := e.newContainer(runtime, "logbintty", []string{"sh", "-c", "tty; sleep 0.2"}, oci.WithTTY)
		task, err := c.NewTask(e.ctx, cio.TerminalBinaryIO(logger, map[string]string{base: ""}))
		ok(t, err)
		exits, err := task.Wait(e.ctx)
		ok(t, err)
		ok(t, task.Start(e.ctx))
		e.waitExit(exits, 20*time.Second)
		eventually(t, 10*time.Second, "the logger to write the terminal's output", func() bool {
			o, _ := os.ReadFile(base + ".stdout")
			return strings.HasPrefix(string(o), "/dev/pts/")
		})
		_, err = task.Delete(e.ctx)
		ok(t, err)
	})
}
