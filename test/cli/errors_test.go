package cli

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bad input fails create and run with one line on stderr and leaves no
// state directory, cgroup, mount or process behind.
func TestBadInput(t *testing.T) {
	integration(t)
	for _, tc := range []struct {
		name  string
		spoil func(b *bundle)
	}{
		{"malformed config.json", func(b *bundle) {
			os.WriteFile(filepath.Join(b.dir, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": `), 0o644)
		}},
		{"missing config.json", func(b *bundle) {
			os.Remove(filepath.Join(b.dir, "config.json"))
		}},
		{"unknown ociVersion major", func(b *bundle) {
			b.spec.Version = "2.0.0"
			b.save()
		}},
		{"missing rootfs", func(b *bundle) {
			b.spec.Root.Path = "no-such-rootfs"
			b.save()
		}},
		{"unknown namespace type", func(b *bundle) {
			b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
			b.save()
		}},
		{"impossible uid mapping", func(b *bundle) {
			b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			b.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 4294967000, Size: 100000}}
			b.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			b.save()
		}},
		{"namespace path that is not a namespace", func(b *bundle) {
			for i, ns := range b.spec.Linux.Namespaces {
				if ns.Type == specs.NetworkNamespace {
					b.spec.Linux.Namespaces[i].Path = "/etc/hostname"
				}
			}
			b.save()
		}},
		{"missing executable", func(b *bundle) {
			b.spec.Process.Args = []string{"/no/such/program"}
			b.save()
		}},
		{"relative cwd", func(b *bundle) {
			b.spec.Process.Cwd = "work"
			b.save()
		}},
		{"empty args", func(b *bundle) {
			b.spec.Process.Args = nil
			b.save()
		}},
		{"bad mount", func(b *bundle) {
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/no/such/source", Options: []string{"bind"}})
			b.save()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"create", "run"} {
				r := newRC(t)
				b := newBundle(t, r, "true")
				tc.spoil(b)
				before := railcarProcesses()
				res := r.run(verb, "--bundle", b.dir, b.id)
				if res.code == 0 {
					t.Errorf("%s succeeded: %v", verb, res)
					r.run("delete", "-f", b.id)
					continue
				}
				checkErrorLine(t, res)
				r.checkNoLeak(b, before)
				if res := r.run("state", b.id); res.code == 0 {
					t.Errorf("%s: a failed %s left a container: %s", tc.name, verb, res.stdout)
				}
			}
		})
	}
}

// A bad id is refused before anything is made.
func TestBadID(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "true")
	for _, id := range []string{"..", "a/b", "", "with space"} {
		res := r.run("create", "-b", b.dir, id)
		if res.code == 0 {
			t.Errorf("create with id %q succeeded", id)
			r.run("delete", "-f", id)
			continue
		}
		checkErrorLine(t, res)
	}
}
