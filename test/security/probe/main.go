// Command probe runs inside the containers of the security tests. It plays
// the attacker's part that needs more than busybox: scanning for the
// runtime's setup processes, reporting file systems and device numbers,
// calling syscalls a seccomp profile should stop. It is built static
// (CGO_ENABLED=0) so that it runs in any rootfs.
//
// Every line it prints that starts with "VULN " is an attack that worked.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe scan|fs|syscalls|open|cwd|fds|sleep ...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "scan":
		scan(args)
	case "fs":
		fs(args)
	case "syscalls":
		syscalls()
	case "open":
		openWrite(args)
	case "cwd":
		cwd()
	case "fds":
		fds()
	case "abstract":
		abstract()
	case "sleep":
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// setupProcess reports whether argv0 is a runtime's setup process, one that
// has not yet exec'd the workload: railcar's re-executed init (railcar-init,
// railcar-exec, rc-init) or runc's (runc init, "runc:[2:INIT]").
func setupProcess(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil || len(b) == 0 {
		return false
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	a0 := filepath.Base(argv[0])
	switch {
	case strings.HasPrefix(a0, "railcar-"), strings.HasPrefix(a0, "rc-init"):
		return true
	case strings.HasPrefix(a0, "runc"):
		return true
	case strings.HasPrefix(a0, "containerd-shim"):
		return true
	}
	return false
}

// scan DURATION: until the time is up, look at every other process; for
// each one that is a runtime setup process, try what CVE-2016-9962 did (get
// at its file descriptors through /proc/PID/fd, which needs it dumpable)
// and what CVE-2019-5736 did (open its executable for writing through
// /proc/PID/exe). An access counts only when the process was still a setup
// process before and after it, so a workload that execs in between does not
// give a false report.
func scan(args []string) {
	d, err := time.ParseDuration(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	self := strconv.Itoa(os.Getpid())
	seen := map[string]bool{}
	held := map[[2]uint64]heldExe{}
	reported := map[string]bool{}
	report := func(what string) {
		if !reported[what] {
			reported[what] = true
			fmt.Println("VULN " + what)
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, ent := range ents {
			pid := ent.Name()
			if pid[0] < '0' || pid[0] > '9' || pid == self {
				continue
			}
			hold(pid, held)
			if !setupProcess(pid) {
				continue
			}
			seen[pid] = true
			if fd, err := unix.Open("/proc/"+pid+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
				f := os.NewFile(uintptr(fd), "fd")
				names, _ := f.Readdirnames(-1)
				f.Close()
				// Listing the directory only takes owning it (root does);
				// what the CVE used, following an fd, takes ptrace access.
				for _, n := range names {
					target, err := os.Readlink("/proc/" + pid + "/fd/" + n)
					if err != nil {
						continue
					}
					if setupProcess(pid) {
						report(fmt.Sprintf("fd-access pid=%s fd %s -> %s", pid, n, target))
					}
					break
				}
			}
			if err := writeSame("/proc/" + pid + "/exe"); err == nil && setupProcess(pid) {
				report("exe-write pid=" + pid)
			}
		}
	}
	// What CVE-2019-5736's exploit did once the runtime had exited: reopen
	// the executable it held for writing.
	// It writes back the byte that is there, so a runtime that is
	// vulnerable shows it without being damaged; opening alone proves
	// nothing (a sealed memfd opens for writing, then refuses writes).
	for _, h := range held {
		if err := writeSame("/proc/self/fd/" + strconv.Itoa(h.fd)); err == nil {
			report("exe-late-write " + h.name)
		}
	}
	fmt.Printf("seen %d setup processes, held %d executables\n", len(seen), len(held))
}

// writeSame overwrites the first byte of path with itself.
func writeSame(path string) error {
	r, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(r)
	b := make([]byte, 1)
	if _, err := unix.Pread(r, b, 0); err != nil {
		return err
	}
	w, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(w)
	_, err = unix.Pwrite(w, b, 0)
	return err
}

type heldExe struct {
	fd   int
	name string
}

// hold keeps an O_PATH handle of the executable of pid (one per inode),
// unless it is the container's own (the probe, busybox): those the
// container may write anyway.
func hold(pid string, held map[[2]uint64]heldExe) {
	fd, err := unix.Open("/proc/"+pid+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var st unix.Stat_t
	name, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	key := [2]uint64{}
	if unix.Fstat(fd, &st) == nil {
		key = [2]uint64{st.Dev, st.Ino}
	}
	if _, ok := held[key]; ok || name == "/probe" || name == "/bin/busybox" || len(held) > 200 {
		unix.Close(fd)
		return
	}
	held[key] = heldExe{fd: fd, name: pid + ":" + name}
}

// fs PATH...: one line per path: "PATH magic=0x.. mode=0.. rdev=MAJ:MIN"
// (lstat, statfs), or "PATH err=...".
func fs(paths []string) {
	for _, p := range paths {
		var st unix.Stat_t
		var sfs unix.Statfs_t
		if err := unix.Lstat(p, &st); err != nil {
			fmt.Printf("%s err=%v\n", p, err)
			continue
		}
		magic := int64(-1)
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Statfs(p, &sfs); err == nil {
				magic = int64(sfs.Type)
			}
		}
		fmt.Printf("%s magic=%#x mode=%#o rdev=%d:%d\n", p, magic, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
}

func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(syscall.Errno); ok {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

// syscalls calls what the seccomp tests look at and prints NAME=RESULT
// lines (an errno name, "ok", or the return value of getppid).
func syscalls() {
	// unshare and keyctl: the default profiles refuse them with EPERM.
	_, _, e := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUTS, 0, 0)
	fmt.Printf("unshare=%s\n", errnoOf(e))
	_, _, e = unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffd), 0)
	fmt.Printf("keyctl=%s\n", errnoOf(e))
	// mkdirat: the custom profiles give it an errnoRet.
	err := unix.Mkdirat(unix.AT_FDCWD, "/tmp/probe-mkdir", 0o755)
	fmt.Printf("mkdirat=%s\n", errnoName(err))
	// getppid: the notify test's listener answers it with a value.
	r, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	if e != 0 {
		fmt.Printf("getppid=%s\n", errnoOf(e))
	} else {
		fmt.Printf("getppid=%d\n", r)
	}
}

func errnoOf(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(e)
}

// open PATH...: try to open each path for writing; "PATH=ok" or the errno.
func openWrite(paths []string) {
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err == nil {
			unix.Close(fd)
		}
		fmt.Printf("%s=%s\n", p, errnoName(err))
	}
}

// cwd prints the working directory as the kernel reports it: a directory
// outside the process's root shows as "(unreachable)/...".
func cwd() {
	buf := make([]byte, 4096)
	n, err := unix.Getcwd(buf)
	if err != nil {
		fmt.Printf("cwd err=%v\n", err)
		return
	}
	fmt.Printf("cwd=%s\n", strings.TrimRight(string(buf[:n]), "\x00"))
	if ents, err := os.ReadDir(".."); err == nil {
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		fmt.Printf("parent=%s\n", strings.Join(names, ","))
	}
}

// fds prints every open fd and what it points to.
func fds() {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		fmt.Printf("err=%v\n", err)
		return
	}
	defer d.Close()
	own := strconv.Itoa(int(d.Fd()))
	ents, _ := d.ReadDir(-1)
	for _, e := range ents {
		if e.Name() == own {
			continue
		}
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Printf("fd %s -> %s\n", e.Name(), l)
	}
}

// abstract tries to connect to every abstract unix socket this network
// namespace has (/proc/net/unix) and prints "abstract @NAME=ok" or the
// errno: containerd's shims once listened on abstract sockets, which any
// container sharing the host's network namespace could reach
// (CVE-2020-15257).
func abstract() {
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		fmt.Printf("err=%v\n", err)
		return
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 8 || !strings.HasPrefix(f[7], "@") || seen[f[7]] {
			continue
		}
		seen[f[7]] = true
		name := f[7]
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			continue
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: name})
		unix.Close(fd)
		fmt.Printf("abstract %s=%s\n", name, errnoName(err))
	}
	fmt.Printf("abstract sockets: %d\n", len(seen))
}
