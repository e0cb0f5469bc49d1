package linux

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// The binary the inits run comes from a detached read-only overlayfs (no
// copy in memory) where the kernel has one, and cannot be written through.
func TestSelfExeOverlay(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	fd, err := overlayExe()
	if err != nil {
		t.Fatalf("overlayExe: %v", err)
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		t.Fatalf("filesystem type %#x, want overlayfs", st.Type)
	}
	if _, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_WRONLY, 0); err == nil {
		t.Fatal("the binary opened for writing through the overlay")
	}
	path, err := selfExe()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		t.Fatalf("selfExe is on filesystem %#x, want overlayfs", st.Type)
	}
}
