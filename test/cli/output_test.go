package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func TestVersion(t *testing.T) {
	integration(t)
	r := newRC(t)
	out := r.ok("--version").stdout
	if !strings.HasPrefix(out, "railcar version ") || !strings.Contains(out, "\nspec: "+specs.Version+"\n") {
		t.Errorf("--version:\n%s", out)
	}
}

func TestSpec(t *testing.T) {
	integration(t)
	r := newRC(t)
	dir := t.TempDir()
	r.ok("spec", "--bundle", dir)
	var s specs.Spec
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Version != specs.Version || s.Root.Path != "rootfs" || !slices.Equal(s.Process.Args, []string{"sh"}) || !s.Process.Terminal {
		t.Errorf("default spec: version %q root %+v args %v", s.Version, s.Root, s.Process.Args)
	}
	var types []string
	for _, ns := range s.Linux.Namespaces {
		types = append(types, string(ns.Type))
	}
	for _, want := range []string{"pid", "network", "ipc", "uts", "mount"} {
		if !slices.Contains(types, want) {
			t.Errorf("default spec lacks the %s namespace: %v", want, types)
		}
	}
	// It never overwrites a config.
	r.fails("spec", "--bundle", dir)

	// In the working directory, as runc does.
	wd := t.TempDir()
	cmd := r.command(t.Context(), "spec")
	cmd.Dir = wd
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spec in cwd: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(wd, "config.json")); err != nil {
		t.Error(err)
	}

	rootless := t.TempDir()
	r.ok("spec", "--rootless", "--bundle", rootless)
	data, _ = os.ReadFile(filepath.Join(rootless, "config.json"))
	s = specs.Spec{}
	json.Unmarshal(data, &s)
	hasUser := false
	for _, ns := range s.Linux.Namespaces {
		hasUser = hasUser || ns.Type == specs.UserNamespace
	}
	if !hasUser || len(s.Linux.UIDMappings) != 1 || len(s.Linux.GIDMappings) != 1 {
		t.Errorf("rootless spec: namespaces %v uid mappings %v", s.Linux.Namespaces, s.Linux.UIDMappings)
	}
}

func TestFeatures(t *testing.T) {
	integration(t)
	r := newRC(t)
	var f features.Features
	out := r.ok("features").stdout
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("features: %v: %s", err, out)
	}
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("oci versions %q..%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		if !slices.Contains(f.Hooks, h) {
			t.Errorf("hook %s missing", h)
		}
	}
	for _, o := range []string{"bind", "rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"} {
		if !slices.Contains(f.MountOptions, o) {
			t.Errorf("mount option %s missing", o)
		}
	}
	if f.Linux == nil || f.Linux.Cgroup == nil {
		t.Fatalf("no linux features: %s", out)
	}
	for _, ns := range []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"} {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("namespace %s missing", ns)
		}
	}
	for _, c := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_RAW"} {
		if !slices.Contains(f.Linux.Capabilities, c) {
			t.Errorf("capability %s missing", c)
		}
	}
	if f.Linux.Cgroup.V1 == nil || !*f.Linux.Cgroup.V1 {
		t.Errorf("cgroup v1 not reported")
	}
	// Id-mapped mounts are implemented (open_tree + mount_setattr).
	if m := f.Linux.MountExtensions; m == nil || m.IDMap == nil || m.IDMap.Enabled == nil || !*m.IDMap.Enabled {
		t.Errorf("idmapped mounts work (TestIDMappedMount) but are not reported enabled")
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	integration(t)
	r := newRC(t)
	if res := r.run("--help"); res.code != 0 || !strings.Contains(res.stdout, "create") {
		t.Errorf("--help: %v", res)
	}
	r.fails("--no-such-flag", "list")
	r.fails("run", "--no-such-flag", "x")
	r.fails("state")
	r.fails("state", "a", "b")
	r.fails("kill")
	r.fails("kill", "a", "KILL", "extra")
	r.fails("state", "../escape")
	r.fails("--root", "/", "list")
	r.fails("--log-format", "xml", "list")
	r.fails("checkpoint", "x")
	r.fails("restore", "x")
}

// Errors go to --log as well, in runc's JSON lines with --log-format json
// (containerd's runc shim reads the last "error" line).
func TestLogFile(t *testing.T) {
	integration(t)
	r := newRC(t)
	log := filepath.Join(t.TempDir(), "log.json")
	res := r.fails("--log", log, "--log-format", "json", "state", "no-such-container")
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var entry struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Time  string `json:"time"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &entry); err != nil {
		t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	if entry.Level != "error" || entry.Time == "" || !strings.Contains(res.stderr, entry.Msg) {
		t.Errorf("log entry %+v, stderr %q", entry, res.stderr)
	}

	text := filepath.Join(t.TempDir(), "log.txt")
	r.fails("--log", text, "state", "no-such-container")
	data, _ = os.ReadFile(text)
	if !strings.Contains(string(data), "level=error") {
		t.Errorf("text log: %q", data)
	}
}
