package task

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// ConfigEnv names a shim config file that overrides DefaultConfigPath.
const ConfigEnv = "RAILCAR_SHIM_CONFIG"

// DefaultConfigPath is read when neither the runtime's ConfigPath nor
// $RAILCAR_SHIM_CONFIG names a file. A missing file means the defaults.
const DefaultConfigPath = "/etc/containerd/railcar.toml"

// DefaultStateRoot holds the engine state of the shim's containers, one
// directory per containerd namespace (container ids are unique only inside
// a namespace).
const DefaultStateRoot = "/run/containerd/railcar"

// Config is the railcar shim's own configuration. containerd's CRI plugin
// hands runc's Options only to io.containerd.runc.v2, so any other runtime
// gets at most runtimeoptions.v1.Options.ConfigPath: the settings live in a
// TOML file of ours. docs/shim.md lists the keys.
type Config struct {
	// SystemdCgroup selects the systemd cgroup driver.
	SystemdCgroup bool `toml:"systemd_cgroup"`
	// RcInit makes rc-init PID 1 of every container (the annotation
	// run.railcar.init still decides per container).
	RcInit bool `toml:"rc_init"`
	// LogLevel is the shim's log level: trace, debug, info, warn, error.
	// Empty means info, or debug when containerd runs with debug logs.
	LogLevel string `toml:"log_level"`
	// StateRoot is the engine state root (default DefaultStateRoot).
	StateRoot string `toml:"state_root"`
}

// LoadConfig reads the config file at path. An empty path means
// $RAILCAR_SHIM_CONFIG, then DefaultConfigPath; only an explicitly named
// file must exist.
func LoadConfig(path string) (Config, error) {
	cfg := Config{StateRoot: DefaultStateRoot}
	explicit := true
	if path == "" {
		path = os.Getenv(ConfigEnv)
	}
	if path == "" {
		path, explicit = DefaultConfigPath, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return cfg, nil
		}
		return cfg, fmt.Errorf("read shim config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			var keys []string
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return cfg, fmt.Errorf("shim config %s: unknown keys %s", path, strings.Join(keys, ", "))
		}
		return cfg, fmt.Errorf("parse shim config %s: %w", path, err)
	}
	if cfg.StateRoot == "" {
		cfg.StateRoot = DefaultStateRoot
	}
	if !filepath.IsAbs(cfg.StateRoot) {
		return cfg, fmt.Errorf("shim config %s: state_root %q is not absolute", path, cfg.StateRoot)
	}
	switch cfg.LogLevel {
	case "", "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic":
	default:
		return cfg, fmt.Errorf("shim config %s: unknown log_level %q", path, cfg.LogLevel)
	}
	return cfg, nil
}
