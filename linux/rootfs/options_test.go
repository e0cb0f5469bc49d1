package rootfs

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   specs.Mount
		want mount
	}{
		{
			name: "tmpfs flags and data",
			in:   specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			want: mount{Source: "tmpfs", Destination: "/dev", Type: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		},
		{
			name: "rbind with propagation, cleared flags and recursive attributes",
			in:   specs.Mount{Destination: "/d", Type: "none", Source: "/src", Options: []string{"rbind", "ro", "rw", "suid", "rprivate", "rro", "rnoatime"}},
			want: mount{Source: "/src", Destination: "/d", Type: "bind", Flags: unix.MS_BIND | unix.MS_REC,
				Cleared: unix.MS_RDONLY | unix.MS_NOSUID, Propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC},
				RecAttr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}},
		},
		{
			name: "type bind without a bind option",
			in:   specs.Mount{Destination: "/d", Type: "bind", Source: "/src"},
			want: mount{Source: "/src", Destination: "/d", Type: "bind", Flags: unix.MS_BIND},
		},
		{
			name: "idmap and copy-up",
			in:   specs.Mount{Destination: "/d", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "idmap"}},
			want: mount{Source: "tmpfs", Destination: "/d", Type: "tmpfs", IDMap: true, CopyUp: true},
		},
		{
			name: "uid mappings",
			in:   specs.Mount{Destination: "/d", Type: "bind", Source: "/src", Options: []string{"bind"}, UIDMappings: []specs.LinuxIDMapping{{Size: 1}}},
			want: mount{Source: "/src", Destination: "/d", Type: "bind", Flags: unix.MS_BIND, IDMap: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMount(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseMountNullByte(t *testing.T) {
	_, err := parseMount(specs.Mount{Destination: "/a\x00b", Type: "tmpfs"})
	if err == nil {
		t.Fatal("a null byte in the destination was accepted")
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/proc": "/proc", "proc": "/proc", "../../../etc": "/etc", "/a/../../b/": "/b", "": "/",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q): got %q, want %q", in, got, want)
		}
	}
}
