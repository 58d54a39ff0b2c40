package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// TestUpAcksOrdersPhases runs `strangler up` and moves the orders plan to
// sync, then shadow, with `strangler phase`: each command waits until
// every component of the plan, the orders service among them, has
// acknowledged the phase, so it fails when the orders service's phase
// watcher does not run. The sync phase's backfill goes through the
// service's forward sync, whose consumer group must then have no lag.
func TestUpAcksOrdersPhases(t *testing.T) {
	// The components' phase watchers reach the admin API at
	// proxy.admin_addr, so it is a fixed free port, not :0.
	env := append(isolatedEnv(t.TempDir()), "STRANGLER_PROXY_ADMIN_ADDR="+lifecycletest.FreeAddr(t))
	p := startUp(t, env)
	waitReady(t, p.addrs["orders-service"]+"/readyz")
	// The commands reach the broker that up runs; the token is the one up
	// wrote under the same data dir.
	env = append(env, "STRANGLER_KAFKA_BROKERS="+hostPort(p.addrs["broker"]))
	for _, tt := range []struct{ phase, name string }{{"sync", "sync"}, {"shadow", "shadow"}} {
		stdout, stderr, code := run(t, env, "phase", "orders", tt.phase, "--wait", "60s", "-o", "json")
		if code != 0 {
			t.Fatalf("phase orders %s: exit %d\n%s%s\nup's log:\n%s", tt.phase, code, stdout, stderr, p.stderr)
		}
		var st struct {
			Name string         `json:"name"`
			Acks map[string]int `json:"acks"`
		}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil {
			t.Fatalf("phase orders %s -o json: %v\n%s", tt.phase, err, stdout)
		}
		if _, ok := st.Acks["orders-service"]; st.Name != tt.name || !ok {
			t.Fatalf("phase orders %s = %s, want phase %s acknowledged by orders-service", tt.phase, stdout, tt.name)
		}
	}
	// The forward sync consumes the backfilled orders: its group's lag
	// comes down to zero.
	deadline := time.Now().Add(60 * time.Second)
	for {
		stdout, stderr, code := run(t, env, "status", "orders", "-o", "json")
		if code != 0 {
			t.Fatalf("status orders: exit %d\n%s%s", code, stdout, stderr)
		}
		var sts []struct {
			SyncLag int64 `json:"sync_lag"`
		}
		if strings.HasPrefix(strings.TrimSpace(stdout), "{") {
			stdout = "[" + stdout + "]"
		}
		if err := json.Unmarshal([]byte(stdout), &sts); err != nil || len(sts) != 1 {
			t.Fatalf("status orders -o json: %v\n%s", err, stdout)
		}
		if sts[0].SyncLag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orders forward sync's lag is still %d after 60s: %s\nup's log:\n%s", sts[0].SyncLag, stdout, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// hostPort strips the scheme of a component's printed address.
func hostPort(addr string) string {
	if i := strings.Index(addr, "://"); i >= 0 {
		return addr[i+3:]
	}
	return addr
}
