package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
	}{
		{"KILL", unix.SIGKILL},
		{"SIGKILL", unix.SIGKILL},
		{"kill", unix.SIGKILL},
		{"sigterm", unix.SIGTERM},
		{"9", unix.SIGKILL},
		{"15", unix.SIGTERM},
		{"USR1", unix.SIGUSR1},
		{"RTMIN", 34},
		{"SIGRTMIN+2", 36},
		{"RTMAX", 64},
		{"RTMAX-1", 63},
	} {
		got, err := parseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "-1", "65", "RTMIN+40", "RTMIN-1", "SIG"} {
		if got, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) = %d, want an error", bad, got)
		}
	}
}

func TestRAMInBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1024", 1024},
		{"-1", -1},
		{"32M", 32 << 20},
		{"32m", 32 << 20},
		{"32MB", 32 << 20},
		{"32MiB", 32 << 20},
		{"1g", 1 << 30},
		{"1.5k", 1536},
		{"2 kb", 2048},
	} {
		got, err := ramInBytes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ramInBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "lots", "12x", "-2", "1..2m"} {
		if got, err := ramInBytes(bad); err == nil {
			t.Errorf("ramInBytes(%q) = %d, want an error", bad, got)
		}
	}
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"a", "abc-123", "a.b_c+d", "UPPER"} {
		if err := validID(ok); err != nil {
			t.Errorf("validID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a b", "a\nb"} {
		if err := validID(bad); err == nil {
			t.Errorf("validID(%q) accepted", bad)
		}
	}
}

func TestCheckTerminal(t *testing.T) {
	for _, tc := range []struct {
		detach, terminal bool
		socket           string
		ok               bool
	}{
		{false, false, "", true},
		{false, true, "", true},    // foreground: railcar proxies the pty
		{true, false, "", true},    // detached, plain stdio
		{true, true, "/s", true},   // detached, master to the socket
		{true, true, "", false},    // detached terminal with nowhere to go
		{true, false, "/s", false}, // socket without a terminal
		{false, true, "/s", false}, // socket in the foreground
	} {
		err := checkTerminal(tc.detach, tc.terminal, tc.socket)
		if (err == nil) != tc.ok {
			t.Errorf("checkTerminal(%v, %v, %q) = %v, want ok=%v", tc.detach, tc.terminal, tc.socket, err, tc.ok)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("hook failed:\nline one\n  line two\n"); got != "hook failed: ; line one ; line two" {
		t.Errorf("oneLine: %q", got)
	}
}

func TestFilterPS(t *testing.T) {
	out := "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sleep 1000\nroot 43 42 0 10:00 ? 00:00:00 sh\n"
	got := captureStdout(t, func() {
		if err := filterPS(out, []int{42}); err != nil {
			t.Fatal(err)
		}
	})
	if want := "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 1000\n"; got != want {
		t.Errorf("filterPS:\n%s\nwant:\n%s", got, want)
	}
	if err := filterPS("USER COMMAND\nroot init\n", nil); err == nil {
		t.Error("filterPS without a PID column succeeded")
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		done <- b.String()
	}()
	f()
	os.Stdout = old
	w.Close()
	return <-done
}

// Usage errors and unknown commands exit 1 with one line on stderr.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"railcar", "state"},
		{"railcar", "kill", "a", "b", "c"},
		{"railcar", "--bogus", "list"},
		{"railcar", "--root", "/", "list"},
		{"railcar", "--log-format", "xml", "list"},
		{"railcar", "checkpoint", "x"},
		{"railcar", "update", "--memory", "lots", "x"},
	} {
		stderr := captureStderr(t, func() {
			if code := run(args); code != 1 {
				t.Errorf("%v: exit %d, want 1", args, code)
			}
		})
		if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "railcar: ") {
			t.Errorf("%v: stderr %q", args, stderr)
		}
	}
}

func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r)
		done <- b.String()
	}()
	f()
	os.Stderr = old
	w.Close()
	return <-done
}
