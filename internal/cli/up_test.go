package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			dir := isolate(t)
			env := map[string]string{
				"STRANGLER_MONOLITH_ADDR":           "127.0.0.1:0",
				"STRANGLER_PROXY_ADDR":              "127.0.0.1:0",
				"STRANGLER_PROXY_ADMIN_ADDR":        "127.0.0.1:0",
				"STRANGLER_BROKER_ADDR":             "127.0.0.1:0",
				"STRANGLER_RELAY_METRICS_ADDR":      "127.0.0.1:0",
				"STRANGLER_SERVICES_INVENTORY_ADDR": "127.0.0.1:0",
			}
			for k, v := range tt.env(dir) {
				env[k] = v
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			g := lifecycletest.Watch("kfake", "segmentio/kafka-go", "net/http.(*Server)", "valyala/fasthttp",
				"stranglerkit/strangler/monolith", "stranglerkit/strangler/extracted", "stranglerkit/strangler/changefeed",
				"stranglerkit/strangler/proxy", "stranglerkit/strangler/internal/cli.watchPhase")
			stdout, stderr, code := runCLI(t, "up", "--log-level", "error")
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			var causes []string
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if !strings.HasPrefix(line, "{") {
					causes = append(causes, line)
				}
			}
			if len(causes) != 1 || !strings.HasPrefix(causes[0], "strangler: ") || !strings.Contains(causes[0], tt.want) {
				t.Fatalf("stderr's cause lines %q, want one line with %q; stderr:\n%s", causes, tt.want, stderr)
			}
			if strings.Contains(stdout, "proxy") {
				t.Errorf("up printed its components though one failed:\n%s", stdout)
			}
			g.WaitNone(t, "after up failed")
			lifecycletest.WaitFilesClosed(t, dir, "after up failed")
		})
	}
}
