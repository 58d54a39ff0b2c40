package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
)

// serviceIDBase is where the orders service's order ids start
// (acl/orders.ServiceIDBase). It does not tell the sides' orders apart:
// after a rollback on SQLite the monolith's ids continue after the
// service's that the back sync wrote into its table.
const serviceIDBase = 1_000_000_000_000

// placedByService reports whether the orders service placed order id: it
// has the order's placement saga (`strangler sagas show order-ID`), which
// an order the monolith placed and the forward sync imported has not.
func placedByService(t *testing.T, env []string, service string, id int64) bool {
	t.Helper()
	stdout, stderr, code := run(t, env, "sagas", "show", "order-"+strconv.FormatInt(id, 10), "--service", service+"/v1", "-o", "json")
	switch {
	case code == 0:
		return true
	case code == 1 && strings.Contains(stderr, "saga not found"):
		return false
	}
	t.Fatalf("sagas show order-%d: exit %d\n%s%s", id, code, stdout, stderr)
	return false
}

// TestUpAcksOrdersPhases runs `strangler up` and walks the orders plan
// with `strangler phase ... --wait`: sync, shadow, canary 10, flip,
// retire, the rollback to canary 100, and flip again. Each command waits
// until every component of the plan, the orders service among them, has
// acknowledged the phase, so it fails when the orders service's phase
// watcher does not run. The sync phase's backfill goes through the
// service's forward sync, whose consumer group must then have no lag.
//
// After each phase it places orders: one sent to the orders service
// directly is refused (409 not-owner) below the flip and placed from it;
// one sent through the proxy is placed in every phase, by the monolith
// below the flip and by the service from it (whose saga placed it); at
// retire one sent to the monolith directly is refused, and after the
// rollback the monolith takes it again. The service's placements reserve
// stock at the inventory service, which takes writes only from its own
// flip, so the inventory plan is walked to its flip first.
func TestUpAcksOrdersPhases(t *testing.T) {
	// The components' phase watchers reach the admin API at
	// proxy.admin_addr, so it is a fixed free port, not :0.
	dataDir, adminAddr := t.TempDir(), lifecycletest.FreeAddr(t)
	env := append(isolatedEnv(dataDir), "STRANGLER_PROXY_ADMIN_ADDR="+adminAddr)
	p := startUp(t, env)
	waitReady(t, p.addrs["orders-service"]+"/readyz")
	// From the flip the proxy sends the writes to the services; one with
	// no healthy instance there yet would have them fall back to the
	// monolith, as an operator would see in `strangler routes list`.
	waitHealthy(t, dataDir, adminAddr, p, "inventory-service", "orders-service")
	// The commands reach the broker that up runs; the token is the one up
	// wrote under the same data dir.
	env = append(env, "STRANGLER_KAFKA_BROKERS="+hostPort(p.addrs["broker"]))
	movePhase := func(module, target string, args ...string) {
		t.Helper()
		stdout, stderr, code := run(t, env, append([]string{"phase", module, target, "--wait", "60s", "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("phase %s %s: exit %d\n%s%s\nup's log:\n%s", module, target, code, stdout, stderr, p.stderr)
		}
		var st struct {
			Name string         `json:"name"`
			Acks map[string]int `json:"acks"`
		}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil {
			t.Fatalf("phase %s %s -o json: %v\n%s", module, target, err, stdout)
		}
		if _, ok := st.Acks[module+"-service"]; st.Name != target || !ok {
			t.Fatalf("phase %s %s = %s, want phase %s acknowledged by %s-service", module, target, stdout, target, module)
		}
	}
	movePhase("inventory", "sync")
	movePhase("inventory", "flip")

	service, proxy, monolith := p.addrs["orders-service"], p.addrs["proxy"], p.addrs["monolith"]
	for _, tt := range []struct {
		phase  string
		args   []string
		owner  bool // the orders service takes order writes
		retire bool // the monolith refuses them
	}{
		{"sync", nil, false, false},
		{"shadow", nil, false, false},
		{"canary", []string{"--weight", "10"}, false, false},
		{"flip", nil, true, false},
		{"retire", nil, true, true},
		{"canary", []string{"--weight", "100"}, false, false},
		{"flip", nil, true, false},
	} {
		movePhase("orders", tt.phase, tt.args...)
		at := "at orders " + tt.phase + " " + strings.Join(tt.args, " ")
		if tt.phase == "sync" {
			waitSyncLag(t, env, p)
		}
		// Directly at the service: refused below the flip, placed from it.
		// The service's local read models learn the customers and prices
		// from the sync's events, which may still be on their way at the
		// first flip: an unknown customer or SKU is retried.
		if tt.owner {
			deadline := time.Now().Add(60 * time.Second)
			for {
				a := placeOrder(t, service)
				if a.placed() {
					if a.ID < serviceIDBase {
						t.Errorf("%s: the service placed order %d, not in its id range", at, a.ID)
					}
					break
				}
				if a.Status != http.StatusUnprocessableEntity || time.Now().After(deadline) {
					t.Fatalf("%s: POST /api/orders at the service: %d %s, want it placed\nup's log:\n%s", at, a.Status, a.Body, p.stderr)
				}
				time.Sleep(200 * time.Millisecond)
			}
		} else if a := placeOrder(t, service); a.Status != http.StatusConflict || !strings.HasSuffix(a.Type, "#not-owner") {
			t.Fatalf("%s: POST /api/orders at the service: %d %s, want 409 not-owner", at, a.Status, a.Body)
		}
		// Through the proxy: placed in every phase, by the side that owns
		// the writes.
		a := placeOrder(t, proxy)
		if !a.placed() {
			t.Fatalf("%s: POST /api/orders through the proxy: %d %s, want it placed\nup's log:\n%s", at, a.Status, a.Body, p.stderr)
		}
		if byService := placedByService(t, env, service, a.ID); byService != tt.owner {
			t.Errorf("%s: the proxy's order %d was placed by the service: %t, want %t", at, a.ID, byService, tt.owner)
		}
		// Directly at the monolith: refused once its write path is
		// retired, taken again after the rollback.
		if tt.retire {
			if a := placeOrder(t, monolith); a.Status != http.StatusConflict || !strings.HasSuffix(a.Type, "#write-path-retired") {
				t.Fatalf("%s: POST /api/orders at the monolith: %d %s, want 409 write-path-retired", at, a.Status, a.Body)
			}
		} else if a := placeOrder(t, monolith); !a.placed() {
			t.Fatalf("%s: POST /api/orders at the monolith: %d %s, want it placed", at, a.Status, a.Body)
		}
	}
}

// waitHealthy waits until the proxy has a healthy instance of each of
// the backends, the services that registered with it.
func waitHealthy(t *testing.T, dataDir, adminAddr string, p *upProcess, backends ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var missing []string
		// The token is there once the proxy has written it.
		token, err := proxy.ReadToken(filepath.Join(dataDir, "admin.token"))
		var bs []api.Backend
		if err == nil {
			var c *adminclient.Client
			if c, err = adminclient.New(adminAddr, token); err != nil {
				t.Fatal(err)
			}
			bs, err = c.Backends(context.Background())
		}
		healthy := map[string]bool{}
		for _, b := range bs {
			for _, in := range b.Instances {
				healthy[b.Name] = healthy[b.Name] || in.Healthy
			}
		}
		for _, name := range backends {
			if !healthy[name] {
				missing = append(missing, name)
			}
		}
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy has no healthy instance of %v after 60s (%v): %+v\nup's log:\n%s", missing, err, bs, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSyncLag waits until the orders forward sync has consumed the
// backfilled orders: its group's lag comes down to zero.
func waitSyncLag(t *testing.T, env []string, p *upProcess) {
	t.Helper()
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
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orders forward sync's lag is still %d after 60s: %s\nup's log:\n%s", sts[0].SyncLag, stdout, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// placed is the answer to an order's placement: its status, the order's
// id or the problem's type, and the body.
type placed struct {
	Status int
	ID     int64
	Type   string
	Body   string
}

// placed reports whether the order was placed: 201, or 202 for a
// placement saga still running (the orders service's answer when the saga
// outlasts its wait).
func (a placed) placed() bool {
	return (a.Status == http.StatusCreated || a.Status == http.StatusAccepted) && a.ID > 0
}

// placeOrder POSTs one order of a seeded customer and product to
// /api/orders at base.
func placeOrder(t *testing.T, base string) placed {
	t.Helper()
	body := `{"customer_id": 1, "lines": [{"sku": "COF-ETH-250", "quantity": 1}]}`
	resp, err := http.Post(base+"/api/orders", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("POST %s/api/orders: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s/api/orders: %v", base, err)
	}
	var out struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &out)
	return placed{Status: resp.StatusCode, ID: out.ID, Type: out.Type, Body: string(b)}
}

// hostPort strips the scheme of a component's printed address.
func hostPort(addr string) string {
	if i := strings.Index(addr, "://"); i >= 0 {
		return addr[i+3:]
	}
	return addr
}
