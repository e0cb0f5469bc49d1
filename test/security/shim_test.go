package security

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The shim half of the tests drives the private containerd of
// test/containerd.sh with ctr, running railcar's shim by absolute path
// (the binary under test) and, as the yardstick, io.containerd.runc.v2
// with runc 1.5.3.

const ctrBin = "/opt/railcar-test/bin/ctr"

func containerdAddress() string {
	if a := os.Getenv("CONTAINERD_ADDRESS"); a != "" {
		return a
	}
	return "/run/railcar-test/containerd/containerd.sock"
}

func testImage() string {
	if i := os.Getenv("RAILCAR_TEST_IMAGE"); i != "" {
		return i
	}
	return "docker.io/library/busybox:railcar-test"
}

// shimEnv is one shim under attack: railcar's, or runc's as the yardstick.
type shimEnv struct {
	*env
	runtime string // ctr --runtime
	out     string // host directory mounted at /out
}

// shims runs fn against railcar's shim and then runc's, each a subtest
// that needs containerd, ctr and the test image.
func shims(t *testing.T, fn func(s *shimEnv)) {
	integration(t)
	for _, rt := range []struct {
		name, runtime string
		yardstick     bool
	}{{"shim-railcar", shimBin, false}, {"shim-runc", "io.containerd.runc.v2", true}} {
		t.Run(rt.name, func(t *testing.T) {
			shimPrerequisites(t)
			s := &shimEnv{env: &env{T: t, name: rt.name, yardstick: rt.yardstick}, runtime: rt.runtime, out: t.TempDir()}
			fn(s)
		})
	}
}

func shimPrerequisites(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(ctrBin); err != nil {
		missing(t, "ctr at "+ctrBin+" (test/setup.sh)")
	}
	if r := runCtr(context.Background(), "version"); r.code != 0 {
		missing(t, "a containerd at "+containerdAddress()+" (test/containerd.sh start): "+strings.TrimSpace(r.stderr))
	}
	if r := runCtr(context.Background(), "image", "ls", "-q"); !strings.Contains(r.stdout, testImage()) {
		missing(t, "the test image "+testImage()+" (test/image/build.sh, test/containerd.sh start)")
	}
}

func runCtr(ctx context.Context, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctrBin, append([]string{"--address", containerdAddress(), "--namespace", "default"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{args: append([]string{"ctr"}, args...), stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		res.code = -1
		res.stderr += err.Error()
	}
	return res
}

// ctr runs ctr.
func (s *shimEnv) ctr(args ...string) result { return runCtr(context.Background(), args...) }

// runArgs are the `ctr run` flags every test container gets: the shim,
// the probe at /probe and the host directory s.out at /out.
func (s *shimEnv) runArgs(extra ...string) []string {
	args := []string{"run", "--runtime", s.runtime,
		"--mount", "type=bind,src=" + probeBin + ",dst=/probe,options=rbind:ro",
		"--mount", "type=bind,src=" + s.out + ",dst=/out,options=rbind:rw"}
	return append(args, extra...)
}

// run runs a container to completion and returns its output.
func (s *shimEnv) run(id string, flags []string, args ...string) result {
	s.Cleanup(func() { s.remove(id) })
	return s.ctr(append(append(s.runArgs(append([]string{"--rm"}, flags...)...), testImage(), id), args...)...)
}

// start starts a detached container, removed at the end of the test.
func (s *shimEnv) start(id string, flags []string, args ...string) {
	s.Helper()
	s.Cleanup(func() { s.remove(id) })
	res := s.ctr(append(append(s.runArgs(append([]string{"-d"}, flags...)...), testImage(), id), args...)...)
	if res.code != 0 {
		s.fatalf("%v", res)
	}
}

func (s *shimEnv) remove(id string) {
	s.ctr("task", "kill", "-s", "KILL", id)
	s.ctr("task", "rm", "-f", id)
	s.ctr("container", "rm", id)
}

// waitTask waits until the task of id has stopped.
func (s *shimEnv) waitTask(id string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r := s.ctr("task", "ls")
		stopped := true
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == id && f[2] != "STOPPED" {
				stopped = false
			}
		}
		if stopped {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scanWhileExecingShim is scanWhileExecing through the shim: the
// container's init scans, the test execs args again and again.
func (s *shimEnv) scanWhileExecing(args ...string) string {
	s.Helper()
	d := raceTime(s.env)
	id := newID(s)
	s.start(id, nil, "sh", "-c", "/probe scan "+(d+time.Second).String()+" > /out/scan.txt")
	n, failed := 0, 0
	until(d, func(i int) bool {
		n++
		if r := s.ctr(append([]string{"task", "exec", "--exec-id", "x" + strconv.Itoa(i), id}, args...)...); r.code != 0 {
			failed++
		}
		return true
	})
	s.waitTask(id, d+10*time.Second)
	data, _ := os.ReadFile(filepath.Join(s.out, "scan.txt"))
	s.Logf("%d execs (%d failed) during %v; probe: %s", n, failed, d, strings.TrimSpace(string(data)))
	if !strings.Contains(string(data), "seen ") {
		s.fatalf("probe did not finish: %q", data)
	}
	return string(data)
}

// shimSum is the checksum of the shim binary a shimEnv runs.
func (s *shimEnv) binary() string {
	if filepath.IsAbs(s.runtime) {
		return s.runtime
	}
	return "/opt/railcar-test/bin/containerd-shim-runc-v2"
}

// TestCVE_2020_15257: containerd's shims listened on abstract unix
// sockets, which live in the network namespace: a container sharing the
// host's network namespace could connect to the shim API and take over
// the host. A host-network container tries every abstract socket it can
// see; none may be a shim's, and the shim's own listening sockets must be
// paths in the file system.
func TestCVE_2020_15257(t *testing.T) {
	shims(t, func(s *shimEnv) {
		id := newID(s)
		res := s.run(id, []string{"--net-host"}, "/probe", "abstract")
		if res.code != 0 {
			s.fatalf("%v", res)
		}
		for _, l := range strings.Split(res.stdout, "\n") {
			name, result, ok := strings.Cut(strings.TrimPrefix(l, "abstract "), "=")
			if !ok || result != "ok" {
				continue
			}
			if strings.Contains(name, "containerd") || strings.Contains(name, "shim") || strings.Contains(name, "railcar") {
				s.vulnf("a host-network container connected to the abstract socket %s", name)
			}
		}
		// The shim of a running container: its listening sockets.
		id = newID(s)
		s.start(id, []string{"--net-host"}, "sleep", "30")
		for _, pid := range shimPids(s.binary(), id) {
			for _, name := range unixSockets(pid) {
				if strings.HasPrefix(name, "@") && (strings.Contains(name, "containerd") || strings.Contains(name, "shim")) {
					s.vulnf("shim %d listens on the abstract socket %s", pid, name)
				}
			}
		}
	})
}

// shimPids finds the running shims of binary serving container id (by
// their -id argument).
func shimPids(binary, id string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(cmd), "\x00")
		if len(args) == 0 || !strings.Contains(args[0], filepath.Base(binary)) {
			continue
		}
		for i := range args[:len(args)-1] {
			if args[i] == "-id" && args[i+1] == id {
				out = append(out, pid)
			}
		}
	}
	return out
}

// unixSockets names the unix sockets pid holds ("@name" for abstract
// ones), from /proc/net/unix of its network namespace.
func unixSockets(pid int) []string {
	inodes := map[string]bool{}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/unix")
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 8 && inodes[f[6]] {
			out = append(out, f[7])
		}
	}
	return out
}
