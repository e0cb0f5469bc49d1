package hooks

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testState() *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          "hooktest",
		Status:      specs.StateCreated,
		Pid:         1234,
		Bundle:      "/bundle",
		Annotations: map[string]string{"a": "b"},
	}
}

func sh(script string, args ...string) specs.Hook {
	return specs.Hook{
		Path: "/bin/sh",
		Args: append([]string{"sh", "-c", script}, args...),
		Env:  []string{"PATH=/usr/bin:/bin"},
	}
}

func TestRunPassesStateArgsAndEnv(t *testing.T) {
	t.Setenv("RAILCAR_HOOK_TEST_LEAK", "leaked")
	dir := t.TempDir()
	h := sh(`cat > "$0/state"; echo "$0|$1|$2" > "$0/args"; env > "$0/env"`, dir, "one", "two")
	h.Env = append(h.Env, "HOOKVAR=yes")

	if err := Run([]specs.Hook{h}, testState(), nil); err != nil {
		t.Fatal(err)
	}

	var got specs.State
	data, err := os.ReadFile(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("hook stdin is not state JSON: %v: %q", err, data)
	}
	if want := testState(); !reflect.DeepEqual(&got, want) {
		t.Errorf("state on stdin: got %+v, want %+v", got, *want)
	}

	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got, want := strings.TrimSpace(string(args)), dir+"|one|two"; got != want {
		t.Errorf("args: got %q, want %q", got, want)
	}

	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	if !strings.Contains(string(env), "HOOKVAR=yes\n") {
		t.Errorf("hook env lacks HOOKVAR=yes:\n%s", env)
	}
	if strings.Contains(string(env), "RAILCAR_HOOK_TEST_LEAK") {
		t.Errorf("hook inherited the runtime's environment:\n%s", env)
	}
}

func TestRunArgv0(t *testing.T) {
	dir := t.TempDir()
	// /proc/self/cmdline of the shell shows argv as given, argv[0] first.
	h := specs.Hook{
		Path: "/bin/sh",
		Args: []string{"custom-argv0", "-c", `tr '\0' ' ' < /proc/$$/cmdline > "$0/cmdline"`, dir},
	}
	if err := Run([]specs.Hook{h}, testState(), nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	if got := string(data); !strings.HasPrefix(got, "custom-argv0 -c ") {
		t.Errorf("cmdline: got %q, want argv[0] custom-argv0", got)
	}
}

func TestRunStopsAtFirstFailure(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "second-ran")
	hooks := []specs.Hook{
		sh(`echo "  something broke  " >&2; exit 3`),
		sh(`touch "$0"`, marker),
	}
	err := Run(hooks, testState(), nil)
	if err == nil {
		t.Fatal("Run succeeded with a failing hook")
	}
	want := `hook "/bin/sh" failed: exit status 3: something broke`
	if err.Error() != want {
		t.Errorf("error: got %q, want %q", err, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hook after the failing one ran")
	}
}

func TestRunReportsStdoutWhenStderrIsEmpty(t *testing.T) {
	err := Run([]specs.Hook{sh(`echo only-stdout; exit 1`)}, testState(), nil)
	if err == nil || !strings.HasSuffix(err.Error(), "exit status 1: only-stdout") {
		t.Errorf("error: got %v, want it to end in the hook's stdout", err)
	}
}

func TestRunKilledBySignal(t *testing.T) {
	err := Run([]specs.Hook{sh(`kill -9 $$`)}, testState(), nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 137") {
		t.Errorf("error: got %v, want exit status 137", err)
	}
}

func TestRunTimeout(t *testing.T) {
	h := sh(`sleep 20`)
	one := 1
	h.Timeout = &one
	start := time.Now()
	err := Run([]specs.Hook{h}, testState(), nil)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Run succeeded although the hook outlived its timeout")
	}
	if got, want := err.Error(), `hook "/bin/sh" timed out after 1s`; got != want {
		t.Errorf("error: got %q, want %q", got, want)
	}
	// The orphaned sleep still holds the hook's stdout and stderr; Run must
	// not wait for it.
	if elapsed > 5*time.Second {
		t.Errorf("Run took %v after a 1s timeout", elapsed)
	}
}

func TestRunWithinTimeout(t *testing.T) {
	h := sh(`exit 0`)
	ten := 10
	h.Timeout = &ten
	if err := Run([]specs.Hook{h}, testState(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestRunDoesNotNeedStdinRead(t *testing.T) {
	// A state far bigger than a pipe buffer, and a hook that never reads it.
	st := testState()
	st.Annotations["big"] = strings.Repeat("x", 1<<20)
	done := make(chan error, 1)
	go func() { done <- Run([]specs.Hook{sh(`exit 0`)}, st, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run blocked on a hook that does not read its stdin")
	}
}

func TestRunRejectsBadHooks(t *testing.T) {
	zero := 0
	for _, tc := range []struct {
		hook specs.Hook
		want string
	}{
		{specs.Hook{Path: "sh"}, `hook "sh": path must be absolute`},
		{specs.Hook{Path: "/bin/true", Timeout: &zero}, `hook "/bin/true": timeout must be greater than zero, got 0`},
		{specs.Hook{Path: "/nonexistent/hook"}, `hook "/nonexistent/hook": start: `},
	} {
		err := Run([]specs.Hook{tc.hook}, testState(), nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("hook %+v: got %v, want %q", tc.hook, err, tc.want)
		}
	}
}

// countingStarter is a Starter that reaps through cmd.Wait, like a reaper
// would through wait4, and counts its calls.
type countingStarter struct{ starts, waits int }

func (s *countingStarter) Start(cmd *exec.Cmd) (chan int, error) {
	s.starts++
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan int, 1)
	go func() {
		cmd.Wait()
		ch <- cmd.ProcessState.ExitCode()
	}()
	return ch, nil
}

func (s *countingStarter) Wait(cmd *exec.Cmd, ch chan int) (int, error) {
	s.waits++
	return <-ch, nil
}

func TestRunUsesStarter(t *testing.T) {
	s := &countingStarter{}
	err := Run([]specs.Hook{sh(`exit 0`), sh(`exit 5`), sh(`exit 0`)}, testState(), s)
	if err == nil || !strings.Contains(err.Error(), "exit status 5") {
		t.Errorf("error: got %v, want exit status 5", err)
	}
	if s.starts != 2 || s.waits != 2 {
		t.Errorf("starter calls: got %d starts, %d waits; want 2 and 2", s.starts, s.waits)
	}
}

func TestRunNoHooks(t *testing.T) {
	if err := Run(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRunNilEnvIsEmpty(t *testing.T) {
	t.Setenv("RAILCAR_HOOK_TEST_LEAK", "leaked")
	dir := t.TempDir()
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `set > "$0/vars"`, dir}}
	if err := Run([]specs.Hook{h}, testState(), nil); err != nil {
		t.Fatal(err)
	}
	vars, err := os.ReadFile(filepath.Join(dir, "vars"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(vars), "RAILCAR_HOOK_TEST_LEAK") {
		t.Errorf("a hook without env inherited the runtime's environment:\n%s", vars)
	}
}
