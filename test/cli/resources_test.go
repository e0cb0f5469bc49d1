package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// readCgroup reads one value of the container's cgroup.
func readCgroup(t *testing.T, b *bundle, controller, v1file, v2file string) string {
	t.Helper()
	file := v1file
	if isCgroup2() {
		file = v2file
	}
	data, err := os.ReadFile(cgroupFile(b, controller, file))
	if err != nil {
		t.Errorf("read cgroup: %v", err)
		return ""
	}
	return strings.TrimSpace(string(data))
}

func TestResourcesAndUpdate(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	limit := int64(64 << 20)
	pids := int64(100)
	shares := uint64(512)
	b.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	b.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	b.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	b.save()
	r.runningContainer(b)

	check := func(what, controller, v1, v2, want1, want2 string) {
		t.Helper()
		want := want1
		if isCgroup2() {
			want = want2
		}
		if got := readCgroup(t, b, controller, v1, v2); got != want {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	check("memory limit", "memory", "memory.limit_in_bytes", "memory.max", "67108864", "67108864")
	check("pids limit", "pids", "pids.max", "pids.max", "100", "100")
	check("cpu shares", "cpu", "cpu.shares", "cpu.weight", "512", "20")

	// The flag form.
	r.ok("update", "--memory", "32M", "--pids-limit", "50", "--cpu-shares", "256", b.id)
	check("memory after update", "memory", "memory.limit_in_bytes", "memory.max", "33554432", "33554432")
	check("pids after update", "pids", "pids.max", "pids.max", "50", "50")
	check("shares after update", "cpu", "cpu.shares", "cpu.weight", "256", "10")

	// A resources file, and the same on stdin.
	file := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(file, []byte(`{"pids":{"limit":40},"memory":{"limit":50331648}}`), 0o644)
	r.ok("update", "-r", file, b.id)
	check("pids from file", "pids", "pids.max", "pids.max", "40", "40")
	check("memory from file", "memory", "memory.limit_in_bytes", "memory.max", "50331648", "50331648")
	if res := r.runIn([]byte(`{"pids":{"limit":30}}`), "update", "-r", "-", b.id); res.code != 0 {
		t.Fatalf("%v", res)
	}
	check("pids from stdin", "pids", "pids.max", "pids.max", "30", "30")

	r.fails("update", "--memory", "lots", b.id)
	os.WriteFile(file, []byte(`{`), 0o644)
	r.fails("update", "-r", file, b.id)
	r.fails("update", "--pids-limit", "10", "no-such-container")
}

func TestEventsStats(t *testing.T) {
	integration(t)
	r := newRC(t)
	b := newBundle(t, r, "sleep", "1000")
	limit := int64(64 << 20)
	b.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	b.save()
	r.runningContainer(b)

	out := r.ok("events", "--stats", b.id).stdout
	var ev types.Event
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v: %q", err, out)
	}
	if ev.Type != "stats" || ev.ID != b.id {
		t.Errorf("event: type %q id %q", ev.Type, ev.ID)
	}
	data, _ := json.Marshal(ev.Data)
	var st types.Stats
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if st.Pids.Current < 1 {
		t.Errorf("pids.current %d, want >= 1", st.Pids.Current)
	}
	if st.Memory.Usage.Usage == 0 || st.Memory.Usage.Limit != uint64(limit) {
		t.Errorf("memory usage %+v, want some usage and limit %d", st.Memory.Usage, limit)
	}
	if st.CPU.Usage.Total == 0 {
		t.Errorf("cpu usage total is 0")
	}

	// Without --stats: a stats event every interval until the container
	// stops.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, "events", "--interval", "100ms", b.id)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for i := 0; i < 2; i++ {
		if !sc.Scan() {
			t.Fatalf("events: stream ended after %d events", i)
		}
		var e types.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type != "stats" {
			t.Errorf("event %d: %q (%v)", i, sc.Text(), err)
		}
	}
	r.ok("kill", b.id, "KILL")
	done := make(chan error, 1)
	go func() {
		for sc.Scan() {
		}
		done <- cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("events did not end when the container stopped")
		cmd.Process.Kill()
	}

	r.waitStatus(b.id, specs.StateStopped)
	r.fails("events", "--stats", b.id)
	r.fails("events", "--interval", "0s", b.id)
}
