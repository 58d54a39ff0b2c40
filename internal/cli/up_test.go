package cli_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	// The shop plugs in its monolith and services, as cmd/strangler does.
	_ "github.com/stranglerkit/strangler/extracted/shop"
	"github.com/stranglerkit/strangler/internal/cli"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// TestUpUnwinds runs `strangler up` in-process with a later component that
// cannot build or cannot start, after the broker, the monolith and the relay
// have started, and checks that up exits 1 with the cause on one line,
// having stopped the components it started and closed what they opened: no
// file under the data dir open, no goroutine of theirs left.
func TestUpUnwinds(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name string
		env  func(dir string) map[string]string
		want string
	}{
		{
			name: "inventory service's database cannot be opened",
			env: func(dir string) map[string]string {
				// A file where the database's directory should be.
				blocker := filepath.Join(dir, "blocker")
				if err := os.WriteFile(blocker, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return map[string]string{"STRANGLER_SERVICES_INVENTORY_DSN": "sqlite:" + filepath.Join(blocker, "inventory.db")}
			},
			want: "inventory service: open sqlite:",
		},
		{
			name: "inventory service's port is in use",
			env: func(string) map[string]string {
				return map[string]string{"STRANGLER_SERVICES_INVENTORY_ADDR": taken.Addr().String()}
			},
			want: "inventory service: listen on " + taken.Addr().String(),
		},
		{
			name: "proxy's port is in use",
			env: func(string) map[string]string {
				return map[string]string{"STRANGLER_PROXY_ADDR": taken.Addr().String()}
			},
			want: taken.Addr().String(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolateFreePorts(t)
			for k, v := range tt.env(dir) {
				t.Setenv(k, v)
			}
			failsCleanly(t, dir, tt.want, "up")
		})
	}
}

// TestRunOneFailsFast runs each command that runs one component with its
// port taken, and checks that it exits 1 at once with the cause on one
// line, leaving no file open and no goroutine.
func TestRunOneFailsFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	tests := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"broker"}, "STRANGLER_BROKER_ADDR", "broker on " + addr},
		{[]string{"monolith"}, "STRANGLER_MONOLITH_ADDR", "monolith: listen on " + addr},
		{[]string{"relay"}, "STRANGLER_RELAY_METRICS_ADDR", "relay: listen on " + addr},
		{[]string{"service", "inventory"}, "STRANGLER_SERVICES_INVENTORY_ADDR", "inventory service: listen on " + addr},
		{[]string{"proxy"}, "STRANGLER_PROXY_ADDR", "proxy: listen on " + addr},
		{[]string{"proxy"}, "STRANGLER_PROXY_ADMIN_ADDR", "proxy admin: listen on " + addr},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dir := isolateFreePorts(t)
			t.Setenv(tt.env, addr)
			failsCleanly(t, dir, tt.want, tt.args...)
		})
	}
}

// isolateFreePorts is isolate with every listener on a free port.
func isolateFreePorts(t *testing.T) string {
	dir := cli.Isolate(t)
	for _, k := range []string{"STRANGLER_MONOLITH_ADDR", "STRANGLER_PROXY_ADDR", "STRANGLER_PROXY_ADMIN_ADDR",
		"STRANGLER_BROKER_ADDR", "STRANGLER_RELAY_METRICS_ADDR", "STRANGLER_SERVICES_INVENTORY_ADDR", "STRANGLER_SERVICES_ORDERS_ADDR"} {
		t.Setenv(k, "127.0.0.1:0")
	}
	return dir
}

// failsCleanly runs the command line args, which must fail: it checks that
// the process would exit 1 with one line of cause that contains want and
// without printing its components, and that no file under dir is left
// open and no goroutine of the components left running.
func failsCleanly(t *testing.T, dir, want string, args ...string) {
	t.Helper()
	g := lifecycletest.Watch("kfake", "segmentio/kafka-go", "net/http.(*Server)", "valyala/fasthttp",
		"stranglerkit/strangler/monolith", "stranglerkit/strangler/extracted", "stranglerkit/strangler/changefeed",
		"stranglerkit/strangler/proxy", "stranglerkit/strangler/internal/cli.watchPhase")
	stdout, stderr, code := cli.RunCLI(t, append(args, "--log-level", "error")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var causes []string
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(line, "{") {
			causes = append(causes, line)
		}
	}
	if len(causes) != 1 || !strings.HasPrefix(causes[0], "strangler: ") || !strings.Contains(causes[0], want) {
		t.Fatalf("stderr's cause lines %q, want one line with %q; stderr:\n%s", causes, want, stderr)
	}
	if stdout != "" {
		t.Errorf("printed its components though one failed:\n%s", stdout)
	}
	g.WaitNone(t, "after the failure")
	lifecycletest.WaitFilesClosed(t, dir, "after the failure")
}
