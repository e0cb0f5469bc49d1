package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// All six hooks run, each with the state on stdin, in the spec's order.
func TestHooks(t *testing.T) {
	integration(t)
	r := newRC(t)
	out := t.TempDir()
	os.Chmod(out, 0o777)
	b := newBundle(t, r, "sh", "-c", "echo run >> /out/order")
	b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind"}})
	// The same script works on the host (dash) and in the container
	// (busybox): it saves stdin where it can see the output directory.
	hook := func(name string) specs.Hook {
		script := fmt.Sprintf(`s=$(cat); for d in %s /out; do if [ -d $d ]; then printf '%%s' "$s" > $d/%s.json; echo %s >> $d/order; exit 0; fi; done; exit 1`, out, name, name)
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin:/usr/bin"}}
	}
	b.spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{hook("prestart")}, //nolint:staticcheck // still part of the spec
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{hook("createContainer")},
		StartContainer:  []specs.Hook{hook("startContainer")},
		Poststart:       []specs.Hook{hook("poststart")},
		Poststop:        []specs.Hook{hook("poststop")},
	}
	b.save()

	r.ok("create", "-b", b.dir, b.id)
	createdPid := r.state(b.id).Pid
	r.ok("start", b.id)
	r.waitStatus(b.id, specs.StateStopped)
	r.ok("delete", b.id)

	order, _ := os.ReadFile(filepath.Join(out, "order"))
	if want := "prestart\ncreateRuntime\ncreateContainer\nstartContainer\nrun\npoststart\npoststop\n"; string(order) != want {
		// poststart may run before or after the workload's first line.
		alt := "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\nrun\npoststop\n"
		if string(order) != alt {
			t.Errorf("hook order: got %q, want %q", order, want)
		}
	}
	for name, want := range map[string]specs.ContainerState{
		"prestart":        specs.StateCreated, // as crun and the runtime-tools suite have it
		"createRuntime":   specs.StateCreating,
		"createContainer": specs.StateCreating,
		"startContainer":  specs.StateCreated,
		"poststart":       specs.StateRunning,
		"poststop":        specs.StateStopped,
	} {
		data, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Errorf("hook %s did not run: %v", name, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil {
			t.Errorf("hook %s: stdin is not a state: %v: %q", name, err, data)
			continue
		}
		if st.ID != b.id || st.Bundle != b.dir || st.Version == "" {
			t.Errorf("hook %s: state %+v", name, st)
		}
		if st.Status != want {
			t.Errorf("hook %s: status %q, want %q", name, st.Status, want)
		}
		switch name {
		case "poststop":
		case "createContainer", "startContainer":
			// These run inside the container, where runc reports
			// the process as pid 1.
			if st.Pid != createdPid && st.Pid != 1 {
				t.Errorf("hook %s: pid %d, want %d (or 1)", name, st.Pid, createdPid)
			}
		default:
			if st.Pid != createdPid {
				t.Errorf("hook %s: pid %d, want %d", name, st.Pid, createdPid)
			}
		}
	}
}

// A failing createRuntime hook fails create and leaves nothing behind.
func TestHookFailure(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "true")
	b.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-says-no >&2; exit 3"}}}}
	b.save()
	before := railcarProcesses()
	res := r.fails("create", "-b", b.dir, b.id)
	if !contains(res.stderr, "hook-says-no") && !contains(res.stderr, "exit status 3") {
		t.Errorf("error does not say why the hook failed: %q", res.stderr)
	}
	r.checkNoLeak(b, before)
}

// A failing poststop hook is a warning: delete succeeds.
func TestPoststopFailure(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "true")
	b.spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/false"}}}
	b.save()
	r.ok("run", "-b", b.dir, b.id)
	r.checkNoLeak(b, nil)
}
