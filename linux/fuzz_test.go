package linux

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seedSpec is a runc-style config.json for the fuzz corpus.
func seedSpec() []byte {
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
				{Type: specs.UserNamespace}, {Type: specs.TimeNamespace},
				{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"},
			},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			TimeOffsets: map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}, "boottime": {Secs: -5, Nanosecs: 7}},
		},
	}
	b, _ := json.Marshal(s)
	return b
}

// FuzzLoadSpec feeds config.json to LoadSpec and Validate. Neither may
// panic, and a spec that validates must give nsenter a bootstrap it reads
// as the spec means it: one "join"/"new" line per namespace (the C side
// splits lines on '\n' and fields on whitespace, so a namespace path with
// either would smuggle in other lines or name another file), an optional
// "timens" line and "end".
func FuzzLoadSpec(f *testing.F) {
	f.Add(seedSpec())
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"mount"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"args":["sh"],"cwd":"rel"},"linux":{}}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]},"linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/proc/1/ns/net"}]}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	// Paths that would smuggle a line or a field into the bootstrap.
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]},"linux":{"namespaces":[{"type":"network","path":"/proc/1/ns/net\nnew user"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]},"linux":{"namespaces":[{"type":"network","path":"/proc/1/ns/net extra"}]}}`))
	bundle := f.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSpec(bundle)
		if err != nil {
			return
		}
		rootfs, err := Validate(s, bundle)
		if err != nil {
			return
		}
		if !filepath.IsAbs(rootfs) {
			t.Errorf("rootfs %q is not absolute", rootfs)
		}
		checkBootstrap(t, s, bootstrapNew(s))
	})
}

// checkBootstrap parses the bootstrap text the way nsenter.c does and
// checks that it says what the spec says.
func checkBootstrap(t *testing.T, s *specs.Spec, text string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	want := len(s.Linux.Namespaces) + 1
	if strings.Contains(text, "\ntimens ") || strings.HasPrefix(text, "timens ") {
		want++
	}
	if len(lines) != want || lines[len(lines)-1] != "end" {
		t.Fatalf("bootstrap has %d lines, want %d ending in \"end\": %q", len(lines), want, text)
	}
	for i, ns := range s.Linux.Namespaces {
		f := strings.Fields(lines[i])
		switch {
		case ns.Path == "" && (len(f) != 2 || f[0] != "new" || f[1] != nsNames[ns.Type]):
			t.Fatalf("namespace %d: line %q, want \"new %s\"", i, lines[i], nsNames[ns.Type])
		case ns.Path != "" && (len(f) != 3 || f[0] != "join" || f[1] != nsNames[ns.Type] || f[2] != ns.Path):
			t.Fatalf("namespace %d: line %q does not join %q", i, lines[i], ns.Path)
		}
	}
}
