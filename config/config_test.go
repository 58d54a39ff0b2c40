package config

import (
	"errors"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadLayers(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		env       map[string]string
		overrides map[string]string
		check     func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c *Config) {
				if c.DataDir != ".strangler" || monolithSection.Of(c).Addr != "127.0.0.1:9001" || monolithSection.Of(c).DSN != "sqlite:.strangler/monolith.db" || !monolithSection.Of(c).SeedEnabled() || c.Log.Format != "json" {
					t.Fatalf("defaults = %+v", c)
				}
			},
		},
		{
			name: "file overrides defaults",
			file: "testdata/full.yaml",
			check: func(t *testing.T, c *Config) {
				if c.DataDir != "/var/lib/strangler" || monolithSection.Of(c).Addr != "127.0.0.1:19001" || monolithSection.Of(c).SeedEnabled() || c.Log.Level != "debug" {
					t.Fatalf("from file = %+v", c)
				}
			},
		},
		{
			name: "env overrides file",
			file: "testdata/full.yaml",
			env:  map[string]string{"STRANGLER_MONOLITH_ADDR": "127.0.0.1:29001", "STRANGLER_MONOLITH_SEED": "true"},
			check: func(t *testing.T, c *Config) {
				if monolithSection.Of(c).Addr != "127.0.0.1:29001" || !monolithSection.Of(c).SeedEnabled() {
					t.Fatalf("from env = %+v", monolithSection.Of(c))
				}
			},
		},
		{
			name:      "flags override env",
			env:       map[string]string{"STRANGLER_MONOLITH_ADDR": "127.0.0.1:29001", "STRANGLER_DATA_DIR": "/tmp/a"},
			overrides: map[string]string{"monolith.addr": "127.0.0.1:39001"},
			check: func(t *testing.T, c *Config) {
				if monolithSection.Of(c).Addr != "127.0.0.1:39001" {
					t.Fatalf("addr = %q, want the flag's", monolithSection.Of(c).Addr)
				}
				if monolithSection.Of(c).DSN != "sqlite:/tmp/a/monolith.db" {
					t.Fatalf("dsn = %q, want it under the env data dir", monolithSection.Of(c).DSN)
				}
			},
		},
		{
			name: "config file from env",
			env:  map[string]string{EnvConfigFile: "testdata/full.yaml"},
			check: func(t *testing.T, c *Config) {
				if c.DataDir != "/var/lib/strangler" {
					t.Fatalf("data dir = %q", c.DataDir)
				}
			},
		},
		{
			name:  "empty file",
			file:  "testdata/empty.yaml",
			check: func(t *testing.T, c *Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(LoadOptions{File: tt.file, LookupEnv: env(tt.env), Overrides: tt.overrides})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		env       map[string]string
		overrides map[string]string
		want      []string
	}{
		{
			name: "all problems listed at once",
			env:  map[string]string{"STRANGLER_MONOLITH_ADDR": "nope", "STRANGLER_LOG_LEVEL": "loud", "STRANGLER_MONOLITH_DSN": "mysql://x"},
			want: []string{"monolith.addr:", "log.level:", "monolith.dsn:"},
		},
		{
			name: "bad env value",
			env:  map[string]string{"STRANGLER_MONOLITH_SEED": "maybe", "STRANGLER_MONOLITH_MAX_BODY_BYTES": "big"},
			want: []string{"monolith.seed (from STRANGLER_MONOLITH_SEED): want true or false", "monolith.max_body_bytes (from STRANGLER_MONOLITH_MAX_BODY_BYTES): want an integer"},
		},
		{
			name:      "unknown flag path",
			overrides: map[string]string{"monolith.adress": "x"},
			want:      []string{"monolith.adress: no such setting"},
		},
		{
			name: "control store DSN not postgres",
			env:  map[string]string{"STRANGLER_CONTROL_DSN": "sqlite:/tmp/control.db", "STRANGLER_CONTROL_POLL_INTERVAL": "-1s"},
			want: []string{"control.dsn: sqlite:/tmp/control.db: the shared control store needs a postgres:// URL", "control.poll_interval: must not be negative"},
		},
		{
			name: "control store DSN unparsable, password kept out",
			env:  map[string]string{"STRANGLER_CONTROL_DSN": "postgres://shop:hunter2@/shop"},
			want: []string{"control.dsn:", "missing host"},
		},
		{name: "unknown field in file", file: "testdata/unknown-field.yaml", want: []string{"testdata/unknown-field.yaml", "field adress not found"}},
		{name: "unknown key in file", file: "testdata/unknown-key.yaml", want: []string{"line 2: field bogus not found in type config.Config"}},
		{name: "wrong type in file", file: "testdata/bad-type.yaml", want: []string{"cannot unmarshal"}},
		{name: "missing file", file: "testdata/missing.yaml", want: []string{`read config "testdata/missing.yaml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(LoadOptions{File: tt.file, LookupEnv: env(tt.env), Overrides: tt.overrides})
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a password", err)
			}
			var ce *Error
			if tt.file != "testdata/missing.yaml" && !errors.As(err, &ce) {
				t.Errorf("error is %T, want *config.Error", err)
			}
		})
	}
}

func TestYAMLRedacts(t *testing.T) {
	c, err := Load(LoadOptions{File: "testdata/full.yaml", LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, "hunter2") {
		t.Fatalf("printed config leaks the DSN password:\n%s", out)
	}
	if !strings.Contains(out, "postgres://shop:xxxxx@db.internal:5432/shop") {
		t.Fatalf("printed config lacks the redacted DSN:\n%s", out)
	}
	if !strings.Contains(out, "postgres://control:xxxxx@db.internal:5432/control") {
		t.Fatalf("printed config lacks the redacted control DSN:\n%s", out)
	}
	// The printed config is itself a valid config file with the same effect.
	again, err := Load(LoadOptions{File: writeTemp(t, strings.ReplaceAll(out, "xxxxx", "hunter2")), LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	a, b2 := monolithSection.Of(again), monolithSection.Of(c)
	if a.Addr != b2.Addr || a.DSN != b2.DSN || a.SeedEnabled() != b2.SeedEnabled() || a.MaxBodyBytes != b2.MaxBodyBytes || again.DataDir != c.DataDir {
		t.Fatalf("round trip changed the config: %+v vs %+v", monolithSection.Of(again), monolithSection.Of(c))
	}
}

func TestSecretTagRedacts(t *testing.T) {
	type inner struct {
		Token string `yaml:"token" secret:"true"`
		Empty string `yaml:"empty" secret:"true"`
		Name  string `yaml:"name"`
	}
	type outer struct {
		Section inner `yaml:"section"`
	}
	n, err := node(reflectValue(outer{Section: inner{Token: "s3cret", Name: "widget"}}), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := yamlMarshal(n)
	if err != nil {
		t.Fatal(err)
	}
	want := "section:\n    token: '[redacted]'\n    empty: \"\"\n    name: widget\n"
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

func TestEnvNames(t *testing.T) {
	names := map[string]string{}
	for _, p := range EnvNames() {
		names[p[0]] = p[1]
	}
	for env, path := range map[string]string{
		"STRANGLER_DATA_DIR":      "data_dir",
		"STRANGLER_MONOLITH_ADDR": "monolith.addr",
		"STRANGLER_LOG_LEVEL":     "log.level",
	} {
		if names[env] != path {
			t.Errorf("EnvNames()[%s] = %q, want %q", env, names[env], path)
		}
	}
}
