package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// ordersModules are the modules of an orders plan that splits reads and
// writes, both with the candidate backend orders-svc, which a table
// defines before them.
const ordersModules = `
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    routes: [{id: orders-read, methods: [GET], prefix: /api/orders}]
  - name: orders-writes
    candidate: orders-svc
    routes: [{id: orders-write, methods: [POST], prefix: /api/orders}]
`

// candidateTable routes an orders module's reads and writes to the
// registry service "orders", whose instances the proxy probes.
const candidateTable = `
backends:
  orders-svc:
    service: orders
    health_check: {path: /healthz, interval: 100ms, unhealthy_after: 1, healthy_after: 1}
` + ordersModules

// staticOrdersTable routes an orders module's reads and writes to the
// service at url.
func staticOrdersTable(url string) string {
	return "\nbackends:\n  orders-svc: {urls: [\"" + url + "\"]}\n" + ordersModules
}

// phaseHealthCLI writes a config whose orders plan splits reads and
// writes and returns a runner of `strangler phase orders ...` against
// the proxy at admin.
func phaseHealthCLI(t *testing.T, admin string) func(args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "strangler.yaml")
	plan := "phases:\n  modules:\n    - {name: orders, read_routes: orders, write_routes: orders-writes}\n"
	if err := os.WriteFile(file, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (int, string, string) {
		return runRoutesCLI(append([]string{"--config", file, "--data-dir", dir, "phase", "orders", "--admin", admin, "--token", proxytest.Token}, args...)...)
	}
}

// assertUnmoved fails the test unless the orders phase is still want and
// both proxy modules still route to legacy: a refused move changes
// nothing, the ownership least of all.
func assertUnmoved(t *testing.T, c *adminclient.Client, want int) {
	t.Helper()
	ctx := context.Background()
	st, err := c.Phase(ctx, "orders")
	if err != nil || st.Phase != want {
		t.Fatalf("orders phase after a refused move: %+v, %v; want phase %d", st, err, want)
	}
	for _, m := range []string{"orders", "orders-writes"} {
		mod, err := c.Module(ctx, m)
		if err != nil || mod.Mode != routes.ModeLegacy {
			t.Fatalf("module %s after a refused move: %+v, %v; want legacy", m, mod, err)
		}
	}
}

// postOrder sends a write through the proxy at base and returns the
// backend that answered it (its X-Backend header) and the status.
func postOrder(t *testing.T, base string) (string, int) {
	t.Helper()
	resp, err := http.Post(base+"/api/orders", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.Header.Get("X-Backend"), resp.StatusCode
}

// TestPhaseWaitsForHealthyCandidate drives `strangler phase` against a
// proxy whose candidate service registers late: while the proxy has no
// healthy instance of it (none registered, then one failing its health
// check), shadow and flip fail with a line naming the backend and change
// neither the phase nor the routing; once a healthy instance registers,
// flip --wait succeeds; and a rollback does not wait for the service.
func TestPhaseWaitsForHealthyCandidate(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: candidateTable})
	c := p.Admin(t)
	ctx := context.Background()
	phaseCLI := phaseHealthCLI(t, p.AdminAddr())

	for _, tc := range []struct {
		args []string
		why  string
	}{
		{[]string{"flip", "--wait", "300ms"}, "no instance of service orders registered"},
		{[]string{"shadow", "--wait", "0"}, "no instance of service orders registered"},
	} {
		code, out, errOut := phaseCLI(tc.args...)
		if code == 0 || !strings.Contains(errOut, "backend orders-svc on replica") || !strings.Contains(errOut, tc.why) {
			t.Fatalf("phase %v with no instance registered: exit %d\n%s%s\nwant a failure naming backend orders-svc: %s", tc.args, code, out, errOut, tc.why)
		}
		if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 0 {
			t.Fatalf("phase %v: the cause takes %d lines, want one:\n%s", tc.args, n+1, errOut)
		}
		t.Logf("phase %v: %s", tc.args, strings.TrimSpace(errOut))
		assertUnmoved(t, c, 0)
	}

	sick := proxytest.HandlerBackend(t, "orders-sick", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	if err := c.Register(ctx, "orders", sick.URL, time.Minute); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := phaseCLI("flip", "--wait", "500ms")
	if code == 0 || !strings.Contains(errOut, "backend orders-svc on replica") || !strings.Contains(errOut, "its instance is not healthy") {
		t.Fatalf("phase flip with an instance failing its health check: exit %d\n%s%s\nwant a failure naming backend orders-svc", code, out, errOut)
	}
	assertUnmoved(t, c, 0)

	svc := proxytest.EchoBackend(t, "orders-svc")
	if err := c.Deregister(ctx, "orders", sick.URL); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, "orders", svc.URL, time.Minute); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := phaseCLI("flip", "--wait", "60s"); code != 0 {
		t.Fatalf("phase flip with a healthy instance registered: exit %d\n%s%s", code, out, errOut)
	}
	for _, m := range []string{"orders", "orders-writes"} {
		if mod, err := c.Module(ctx, m); err != nil || mod.Mode != routes.ModeExtracted {
			t.Fatalf("module %s after the flip: %+v, %v; want extracted", m, mod, err)
		}
	}
	if b, status := postOrder(t, p.URL); b != "orders-svc" {
		t.Fatalf("a write after the flip was served by %q (status %d), want orders-svc", b, status)
	}

	// The service goes away: rolling back takes traffic from it, so it
	// does not wait for it.
	if err := c.Deregister(ctx, "orders", svc.URL); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		args  []string
		phase int
	}{
		{[]string{"canary", "--weight", "50", "--wait", "0"}, 3},
		{[]string{"legacy", "--wait", "0"}, 0},
	} {
		if code, out, errOut := phaseCLI(step.args...); code != 0 {
			t.Fatalf("rollback phase %v with no instance: exit %d\n%s%s", step.args, code, out, errOut)
		}
		if st, err := c.Phase(ctx, "orders"); err != nil || st.Phase != step.phase {
			t.Fatalf("orders phase after rollback %v: %+v, %v", step.args, st, err)
		}
	}
}

// TestPhaseWaitsForHealthyCandidateOnEveryReplica runs two proxies on a
// shared store. A live replica whose report has no instance of the
// candidate makes flip fail with a line naming that replica alone; flip
// --wait then waits for its report to expire and for the instance
// registered through replica 0 to reach replica 1 (at its registry's next
// sync) and pass its health check there, so that neither replica falls
// back to the monolith for the flipped writes.
func TestPhaseWaitsForHealthyCandidateOnEveryReplica(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	dsn := dbtest.PostgresDSN(t)
	cfg := control.StoreConfig{DSN: dsn, PollInterval: 100 * time.Millisecond}
	doc, err := routes.Parse([]byte(candidateTable))
	if err != nil {
		t.Fatal(err)
	}
	ps := startReplicas(t, 2, legacy.URL, cfg, doc)
	c := ps[0].Admin(t)
	ctx := context.Background()
	phaseCLI := phaseHealthCLI(t, ps[0].AdminAddr())

	if code, out, errOut := phaseCLI("flip", "--wait", "300ms"); code == 0 || !strings.Contains(errOut, "orders-svc") {
		t.Fatalf("phase flip with no instance registered: exit %d\n%s%s", code, out, errOut)
	}
	assertUnmoved(t, c, 0)

	if err := c.Register(ctx, "orders", svc.URL, time.Minute); err != nil {
		t.Fatal(err)
	}
	flipped := func() {
		t.Helper()
		if code, out, errOut := phaseCLI("flip", "--wait", "60s"); code != 0 {
			t.Fatalf("phase flip with a healthy instance registered: exit %d\n%s%s", code, out, errOut)
		}
		// No polling: the command returned, so both replicas send the
		// writes to the instance.
		for i, p := range ps {
			if b, status := postOrder(t, p.URL); b != "orders-svc" {
				t.Fatalf("replica %d served a write after the flip from %q (status %d), want orders-svc", i, b, status)
			}
		}
	}
	flipped()
	if code, out, errOut := phaseCLI("legacy"); code != 0 {
		t.Fatalf("phase legacy: exit %d\n%s%s", code, out, errOut)
	}

	// A live replica that reports no instance of the candidate, saved
	// straight to the store, holds the flip until its report expires.
	stuck, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	detail, err := json.Marshal(map[string]any{"backends": []api.BackendHealth{{Name: "orders-svc", Service: "orders"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := stuck.ReportReplica(ctx, control.ReplicaStatus{Replica: "stuck-host/127.0.0.1:1", Version: 1, Detail: detail}, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := phaseCLI("flip", "--wait", "300ms")
	if code == 0 || !strings.Contains(errOut, "backend orders-svc on replica stuck-host/127.0.0.1:1 (no instance of service orders registered)") ||
		strings.Contains(errOut, ps[0].AdminAddr()) || strings.Contains(errOut, ps[1].AdminAddr()) {
		t.Fatalf("phase flip with a replica that has no instance: exit %d\n%s%s\nwant a failure naming that replica alone", code, out, errOut)
	}
	t.Logf("with a replica that has no instance: %s", strings.TrimSpace(errOut))
	assertUnmoved(t, c, 0)
	flipped()
}
