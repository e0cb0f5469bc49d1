package linux_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/railcar-oci/railcar/linux"
)

// TestJoinUserNamespaceWithMappings: a spec that joins a user namespace by
// path may repeat that namespace's mappings, as containerd does for the
// sandbox (a pinned namespace, bind-mounted to a file) and every container
// of a pod with a user namespace; other mappings are refused.
func TestJoinUserNamespaceWithMappings(t *testing.T) {
	dir, s := bundle(t, "cat", "/proc/self/uid_map")
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
	holder := exec.Command("sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 400000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 400000, Size: 65536}}}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	pinned := filepath.Join(t.TempDir(), "user")
	if err := os.WriteFile(pinned, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/proc/"+strconv.Itoa(holder.Process.Pid)+"/ns/user", pinned, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(pinned, unix.MNT_DETACH)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: pinned})
	s.Linux.UIDMappings, s.Linux.GIDMappings = ids, ids

	e := engine(t)
	out, code := run(t, e, "joinuserns", dir, s)
	if got := strings.Fields(out); code != 0 || len(got) != 3 || got[1] != "400000" {
		t.Fatalf("code %d, uid_map %q, want 0 400000 65536", code, out)
	}

	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 500000, Size: 65536}}
	_, err := e.Create(context.Background(), "joinuserns-other", linux.CreateOpts{Bundle: dir, Spec: s})
	if err == nil || !strings.Contains(err.Error(), "gidMappings") {
		t.Fatalf("create with mappings not the namespace's: got %v, want an error naming gidMappings", err)
	}
	if ents, _ := os.ReadDir(e.Root()); len(ents) != 0 {
		t.Fatalf("state left: %v", ents)
	}
}

// TestUserNamespaceBindUnreachableSource: in a container with a user
// namespace, a bind mount whose source the container's root cannot reach
// (containerd's pod /dev/shm sits in a 0700 state directory) is made from
// a copy the runtime opened with the host's privileges.
func TestUserNamespaceBindUnreachableSource(t *testing.T) {
	dir, s := bundle(t, "sh", "-c", "cat /data/f /etc/one")
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	private := filepath.Join(t.TempDir(), "private")
	os.MkdirAll(filepath.Join(private, "data"), 0o755)
	os.Chmod(private, 0o700)
	os.WriteFile(filepath.Join(private, "data", "f"), []byte("dir\n"), 0o644)
	os.WriteFile(filepath.Join(private, "one"), []byte("file\n"), 0o644)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 400000, Size: 65536}}
	// The container's root owns its rootfs and creates both mountpoints,
	// a directory and a file, from what the sources are.
	for _, d := range []string{"rootfs", "rootfs/etc"} {
		os.Chown(filepath.Join(dir, d), 400000, 400000)
	}
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: filepath.Join(private, "data"), Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/etc/one", Type: "bind", Source: filepath.Join(private, "one"), Options: []string{"bind"}})
	out, code := run(t, engine(t), "usernsbind", dir, s)
	if code != 0 || out != "dir\nfile\n" {
		t.Fatalf("code %d out %q, want 0 and the two files", code, out)
	}
}
