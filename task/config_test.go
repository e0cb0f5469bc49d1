package task

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv(ConfigEnv, "")
	for _, tc := range []struct {
		name, body string
		want       Config
		err        string
	}{
		{name: "empty", body: "", want: Config{StateRoot: DefaultStateRoot}},
		{name: "all", body: "systemd_cgroup = true\nrc_init = true\nlog_level = \"debug\"\nstate_root = \"/run/x\"\n",
			want: Config{SystemdCgroup: true, RcInit: true, LogLevel: "debug", StateRoot: "/run/x"}},
		{name: "typo", body: "systemd_cgroups = true\n", err: "systemd_cgroups"},
		{name: "relative", body: "state_root = \"run\"\n", err: "not absolute"},
		{name: "level", body: "log_level = \"loud\"\n", err: "loud"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadConfig(write(tc.name+".toml", tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("explicit missing", func(t *testing.T) {
		if _, err := LoadConfig(filepath.Join(dir, "missing.toml")); err == nil {
			t.Error("a missing ConfigPath file must be an error")
		}
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv(ConfigEnv, write("env.toml", "rc_init = true\n"))
		got, err := LoadConfig("")
		if err != nil || !got.RcInit {
			t.Errorf("got %+v, %v; want rc_init from $%s", got, err, ConfigEnv)
		}
	})
}
