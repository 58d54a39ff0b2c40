package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the strangler binary built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strangler-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "strangler")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build strangler:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// isolatedEnv is the environment for a strangler process that must not touch
// the developer's ports or data: every listener on a free port.
func isolatedEnv(dataDir string) []string {
	env := []string{"STRANGLER_DATA_DIR=" + dataDir}
	for _, kv := range os.Environ() {
		// A developer's STRANGLER_* settings must not leak into the test,
		// except the test database settings.
		if strings.HasPrefix(kv, "STRANGLER_") && !strings.HasPrefix(kv, "STRANGLER_TEST_") && !strings.HasPrefix(kv, "STRANGLER_REQUIRE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, freePortEnv...)
}

// freePortEnv moves every listener of `up` to a free port.
var freePortEnv = []string{
	"STRANGLER_MONOLITH_ADDR=127.0.0.1:0",
	"STRANGLER_PROXY_ADDR=127.0.0.1:0",
	"STRANGLER_PROXY_ADMIN_ADDR=127.0.0.1:0",
	"STRANGLER_BROKER_ADDR=127.0.0.1:0",
	"STRANGLER_RELAY_METRICS_ADDR=127.0.0.1:0",
	"STRANGLER_SERVICES_INVENTORY_ADDR=127.0.0.1:0",
	"STRANGLER_SERVICES_ORDERS_ADDR=127.0.0.1:0",
}

func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCommands(t *testing.T) {
	dataDir := t.TempDir()
	env := isolatedEnv(dataDir)
	tests := []struct {
		name       string
		env        []string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		notStdout  []string
		oneLineErr bool
	}{
		{name: "version", args: []string{"version"}, stdout: []string{"strangler "}},
		{name: "version json", args: []string{"version", "-o", "json"}, stdout: []string{`"version":`}},
		{
			name:      "config print redacts",
			env:       []string{"STRANGLER_MONOLITH_DSN=postgres://shop:hunter2@db:5432/shop"},
			args:      []string{"config", "print"},
			stdout:    []string{"dsn: postgres://shop:xxxxx@db:5432/shop", "data_dir: " + dataDir},
			notStdout: []string{"hunter2"},
		},
		{
			name: "flag beats env",
			env:  []string{"STRANGLER_LOG_LEVEL=debug"}, args: []string{"config", "print", "--log-level", "warn"},
			stdout: []string{"level: warn"},
		},
		{
			name: "bad config lists every problem on one line",
			env:  []string{"STRANGLER_MONOLITH_ADDR=nowhere", "STRANGLER_LOG_FORMAT=xml"},
			args: []string{"config", "print"}, code: 1,
			stderr: []string{"strangler: invalid config:", "monolith.addr:", "log.format:"}, oneLineErr: true,
		},
		{
			name: "proxy --control-dsn beats env and is checked",
			env:  []string{"STRANGLER_CONTROL_DSN=postgres://fleet@db:5432/control"}, args: []string{"proxy", "--control-dsn", "sqlite:/tmp/control.db"}, code: 1,
			stderr: []string{"strangler: invalid config:", "the shared control store needs a postgres:// URL"}, oneLineErr: true,
		},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "unknown flag", args: []string{"version", "--frob"}, code: 2, stderr: []string{"unknown flag: --frob"}},
		{name: "migrate unknown target", args: []string{"migrate", "status", "nosuch"}, code: 2, stderr: []string{`unknown migration target "nosuch"`}},
		{name: "migrate down needs a count", args: []string{"migrate", "down"}, code: 2, stderr: []string{"--steps N or --all"}},
		{name: "migrate bad dsn", args: []string{"migrate", "status", "--dsn", "mysql://x"}, code: 2, stderr: []string{"--dsn: unsupported database DSN"}},
		{name: "projections unknown set", args: []string{"projections", "list", "nosuch"}, code: 2, stderr: []string{`unknown projections "nosuch"; known: orders`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, append(append([]string{}, env...), tt.env...), tt.args...)
			if code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.notStdout {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout has %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.oneLineErr && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("error is not one line:\n%s", stderr)
			}
		})
	}
}

func TestMigrateUpDownStatus(t *testing.T) {
	env := isolatedEnv(t.TempDir())
	steps := []struct {
		args []string
		want *regexp.Regexp
	}{
		{[]string{"migrate", "status"}, regexp.MustCompile(`catalog\s+schema_migrations_catalog\s+0\s+\d+\s+[1-9]`)},
		{[]string{"migrate", "up"}, regexp.MustCompile(`catalog\s+schema_migrations_catalog\s+(\d+)\s+(\d+)\s+0\s+false`)},
		{[]string{"migrate", "down", "--all"}, regexp.MustCompile(`orders\s+schema_migrations_orders\s+0\s+`)},
	}
	for _, s := range steps {
		stdout, stderr, code := run(t, env, s.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", s.args, code, stderr)
		}
		if !s.want.MatchString(stdout) {
			t.Fatalf("%v: output does not match %s:\n%s", s.args, s.want, stdout)
		}
	}
	stdout, _, code := run(t, env, "migrate", "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status -o json: exit %d", code)
	}
	var st struct {
		Sets []struct {
			Name    string `json:"name"`
			Pending int    `json:"pending"`
		} `json:"sets"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || len(st.Sets) == 0 {
		t.Fatalf("status json = %q, %v", stdout, err)
	}
}

// TestProjectionsRebuildOrders migrates the orders service's database and
// rebuilds its read models with the shop's registration.
func TestProjectionsRebuildOrders(t *testing.T) {
	env := isolatedEnv(t.TempDir())
	if _, stderr, code := run(t, env, "migrate", "up", "orders"); code != 0 {
		t.Fatalf("migrate up orders: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := run(t, env, "projections", "rebuild", "orders")
	want := regexp.MustCompile(`rebuilt from position 0: orders.by_id, orders.by_customer, orders.by_status\n(?s:.*)orders.by_status\s+0\s+0\s+0`)
	if code != 0 || !want.MatchString(stdout) {
		t.Fatalf("projections rebuild orders: exit %d\n%s%s", code, stdout, stderr)
	}
}

// upProcess is a running `strangler up`.
type upProcess struct {
	cmd    *exec.Cmd
	addrs  map[string]string
	stderr *bytes.Buffer
	done   chan error
}

var componentLine = regexp.MustCompile(`^\s+(\S+)\s+(\S+)`)

// startUp runs `strangler up` and waits for the component lines it prints.
func startUp(t *testing.T, env []string, args ...string) *upProcess {
	t.Helper()
	return startUpUnder(t, env, nil, args...)
}

// startUpUnder is startUp with the binary run under a wrapper command, such
// as prlimit and its options.
func startUpUnder(t *testing.T, env, wrapper []string, args ...string) *upProcess {
	t.Helper()
	argv := append(append(append([]string(nil), wrapper...), binary, "up"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, addrs: map[string]string{}, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("up exited before printing its components; stderr:\n%s", p.stderr)
			}
			if m := componentLine.FindStringSubmatch(line); m != nil {
				p.addrs[m[1]] = m[2]
			}
			if _, ok := p.addrs["admin"]; ok {
				go func() {
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("up printed no component lines in 60s; stderr:\n%s", p.stderr)
		}
	}
}

// expectedComponents are the components `up` prints a line for.
var expectedComponents = []string{"broker", "monolith", "relay", "inventory-service", "orders-service", "proxy", "admin"}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 60s", url)
}

func TestUpStartsAndStopsCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dataDir := t.TempDir()
			p := startUp(t, isolatedEnv(dataDir))
			for _, name := range expectedComponents {
				if p.addrs[name] == "" {
					t.Fatalf("up printed no line for %s: %v", name, p.addrs)
				}
			}
			waitReady(t, p.addrs["monolith"]+"/readyz")
			waitReady(t, p.addrs["inventory-service"]+"/readyz")
			waitReady(t, p.addrs["orders-service"]+"/readyz")
			if _, err := os.Stat(filepath.Join(dataDir, "monolith.db")); err != nil {
				t.Fatalf("no SQLite file under the data dir: %v", err)
			}
			// up writes its pid under the data dir before it prints its
			// components, and removes it when it stops.
			pidFile := filepath.Join(dataDir, "up.pid")
			if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.cmd.Process.Pid) {
				t.Fatalf("up.pid = %q (%v), want up's pid %d", b, err, p.cmd.Process.Pid)
			}
			start := time.Now()
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			select {
			case err := <-p.done:
				if err != nil {
					t.Fatalf("up exited with %v after %s; stderr:\n%s", err, time.Since(start), p.stderr)
				}
				if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
					t.Errorf("up.pid is still there after up stopped: %v", err)
				}
			case <-ctx.Done():
				t.Fatalf("up did not stop within 10s of %s", sig)
			}
			// A fresh start and a clean stop log no error: a component
			// that races another's start-up shows here.
			for _, line := range strings.Split(p.stderr.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Errorf("up logged an error on a clean start and stop: %s", line)
				}
			}
		})
	}
}
