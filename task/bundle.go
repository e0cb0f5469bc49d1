package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/log"

	"github.com/railcar-oci/railcar/linux"
)

// Files the shim keeps in the bundle so that `containerd-shim-railcar-v2
// delete`, run after the shim was killed, can find the container again.
const (
	shimStateFile = "railcar-shim.json"
	exitFile      = "railcar-exit.json"
)

// bundleState is what the shim recorded at Create.
type bundleState struct {
	StateRoot     string `json:"state_root"`
	SystemdCgroup bool   `json:"systemd_cgroup"`
	RcInit        bool   `json:"rc_init"`
	Pid           int    `json:"pid"`
	Rootfs        string `json:"rootfs,omitempty"`
}

type exitRecord struct {
	Pid      int       `json:"pid"`
	Status   int       `json:"status"`
	ExitedAt time.Time `json:"exited_at"`
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func writeBundleState(bundle string, cfg Config, pid int, rootfs string) error {
	return writeJSON(filepath.Join(bundle, shimStateFile), bundleState{
		StateRoot: cfg.StateRoot, SystemdCgroup: cfg.SystemdCgroup, RcInit: cfg.RcInit,
		Pid: pid, Rootfs: rootfs,
	})
}

func writeExit(bundle string, e Exit) error {
	return writeJSON(filepath.Join(bundle, exitFile), exitRecord{Pid: e.Pid, Status: e.Status, ExitedAt: e.Timestamp})
}

// CleanupResult is what `delete` reports to containerd.
type CleanupResult struct {
	Pid        int
	ExitStatus int
	ExitedAt   time.Time
}

// Cleanup removes what a killed shim left of container id: it deletes the
// engine's container (killing what still runs), unmounts the rootfs and
// returns the init's exit as recorded, or 128+SIGKILL.
func Cleanup(ctx context.Context, bundle, ns, id string) (CleanupResult, error) {
	var st bundleState
	if err := readJSON(filepath.Join(bundle, shimStateFile), &st); err != nil && !errors.Is(err, os.ErrNotExist) {
		return CleanupResult{}, fmt.Errorf("read shim state: %w", err)
	}
	if st.StateRoot == "" {
		st.StateRoot = DefaultStateRoot
	}
	cfg := Config{StateRoot: st.StateRoot, SystemdCgroup: st.SystemdCgroup, RcInit: st.RcInit}
	if e, err := linux.New(linux.Config{Root: stateDir(cfg, ns), SystemdCgroup: cfg.SystemdCgroup}); err != nil {
		log.G(ctx).WithError(err).Warn("open engine")
	} else if c, err := e.Load(id); err != nil {
		if !errors.Is(err, linux.ErrNotExist) {
			log.G(ctx).WithError(err).Warn("load container")
		}
	} else if err := c.Delete(ctx, true); err != nil {
		log.G(ctx).WithError(err).Warn("delete container")
	}
	rootfs := st.Rootfs
	if rootfs == "" {
		rootfs = filepath.Join(bundle, "rootfs")
	}
	_ = unmountRootfs(ctx, rootfs)

	var rec exitRecord
	if err := readJSON(filepath.Join(bundle, exitFile), &rec); err == nil {
		return CleanupResult{Pid: rec.Pid, ExitStatus: rec.Status, ExitedAt: rec.ExitedAt}, nil
	}
	return CleanupResult{Pid: st.Pid, ExitStatus: 128 + int(syscall.SIGKILL), ExitedAt: time.Now()}, nil
}
