package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestRoutesListReplicas runs two proxies on the store that control.dsn
// names, opened as `strangler proxy` opens it: a flip through one with
// `strangler routes flip` is served by the other, and `strangler routes list` against either lists
// both replicas at the flip's version.
func TestRoutesListReplicas(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	cfg := control.StoreConfig{DSN: dbtest.PostgresDSN(t), PollInterval: 100 * time.Millisecond}
	ps := startReplicas(t, 2, legacy.URL, cfg, ordersTable(svc.URL))
	if code, out, errOut := runRoutesCLI("routes", "flip", "orders", "--data-dir", t.TempDir(), "--admin", ps[0].AdminAddr(), "--token", proxytest.Token); code != 0 {
		t.Fatalf("routes flip through replica 0: exit %d\n%s%s", code, out, errOut)
	}
	m, err := ps[0].Admin(t).Module(context.Background(), "orders")
	if err != nil || m.Mode != routes.ModeExtracted {
		t.Fatalf("replica 0 after the flip: %+v, %v", m, err)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool { return ps[1].Version() == m.Version },
		"replica 1 serves version %d, not the flip's %d", ps[1].Version(), m.Version)
	if _, e := proxytest.Get(t, ps[1].URL+"/api/orders/1", nil); e == nil || e.Backend != "orders-svc" {
		t.Fatalf("replica 1 serves /api/orders from %+v, want orders-svc", e)
	}
	var out string
	proxytest.Eventually(t, 10*time.Second, func() bool {
		var code int
		code, out, _ = runRoutesCLI("routes", "list", "--data-dir", t.TempDir(), "--admin", ps[1].AdminAddr(), "--token", proxytest.Token)
		if code != 0 {
			return false
		}
		for _, p := range ps {
			line := lineWith(out, "/"+p.AdminAddr())
			if line == "" || !strings.Contains(line, " "+strconv.FormatInt(m.Version, 10)+" ") || !strings.Contains(line, " ok ") {
				return false
			}
		}
		return strings.Contains(out, "REPLICA")
	}, "routes list does not show both replicas at version %d, ok:\n%s", m.Version, out)
	t.Logf("routes list:\n%s", out)
}

// ordersTable is a default route to legacy and an orders module whose
// candidate is svc.
func ordersTable(svc string) *routes.Doc {
	return &routes.Doc{
		Backends: map[string]routes.Backend{"orders-svc": {URLs: []string{svc}}},
		Modules: []routes.Module{
			{Name: "default", Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}}},
			{Name: "orders", Candidate: "orders-svc", Routes: []routes.RouteDef{{ID: "orders", Prefix: "/api/orders"}}},
		},
	}
}

// startReplicas starts n proxies on the store cfg names, opened as
// `strangler proxy` opens it, with table as the initial one.
func startReplicas(t *testing.T, n int, legacy string, cfg control.StoreConfig, table *routes.Doc) []*proxytest.Proxy {
	t.Helper()
	var ps []*proxytest.Proxy
	for i := 0; i < n; i++ {
		store := controlStore(cfg, slog.New(slog.DiscardHandler))
		t.Cleanup(func() { _ = store.Close() })
		ps = append(ps, proxytest.Start(t, proxytest.Config{Legacy: legacy, Options: []proxy.Option{
			proxy.WithStore(store), proxy.WithControlConfig(cfg), proxy.WithInitialTable(table)}}))
	}
	return ps
}

// lineWith is the first line of out that contains s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestPhaseWaitsForReplicas runs `strangler phase` through one of two
// replicas on a shared store: it reports the phase done only once every
// live replica serves the change, and a live replica that stays behind
// (here a report saved straight to the store, at version 1) makes it fail
// with a line naming the straggler, until that report expires.
func TestPhaseWaitsForReplicas(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	dsn := dbtest.PostgresDSN(t)
	cfg := control.StoreConfig{DSN: dsn, PollInterval: 100 * time.Millisecond}
	ps := startReplicas(t, 2, legacy.URL, cfg, ordersTable(svc.URL))
	dir := t.TempDir()
	file := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(file, []byte("phases:\n  modules:\n    - {name: orders, read_routes: orders}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	phaseCLI := func(args ...string) (int, string, string) {
		return runRoutesCLI(append([]string{"--config", file, "--data-dir", dir, "phase", "orders", "--admin", ps[0].AdminAddr(), "--token", proxytest.Token}, args...)...)
	}

	stuck, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	const ttl = 3 * time.Second
	if err := stuck.ReportReplica(context.Background(), control.ReplicaStatus{Replica: "stuck-host/127.0.0.1:1", Version: 1}, ttl); err != nil {
		t.Fatal(err)
	}
	reported := time.Now()
	code, out, errOut := phaseCLI("shadow", "--wait", "500ms")
	if code == 0 || !strings.Contains(errOut, "stuck-host/127.0.0.1:1 (at 1)") || strings.Contains(errOut, ps[1].AdminAddr()) {
		t.Fatalf("phase with a replica stuck at version 1: exit %d\n%s%s\nwant a failure naming the stuck replica alone", code, out, errOut)
	}
	t.Logf("with a straggler: %s", strings.TrimSpace(errOut))

	// Once the stuck report expires, only the two proxies are live.
	time.Sleep(time.Until(reported.Add(ttl)))
	for _, step := range []struct {
		args []string
		mode routes.Mode
	}{
		{[]string{"canary", "--weight", "50"}, routes.ModeCanary},
		{[]string{"flip"}, routes.ModeExtracted},
		{[]string{"legacy"}, routes.ModeLegacy},
	} {
		if code, out, errOut := phaseCLI(step.args...); code != 0 {
			t.Fatalf("phase %v: exit %d\n%s%s", step.args, code, out, errOut)
		}
		m, err := ps[0].Admin(t).Module(context.Background(), "orders")
		if err != nil || m.Mode != step.mode {
			t.Fatalf("replica 0 after phase %v: %+v, %v", step.args, m, err)
		}
		// No polling: the command returned, so replica 1 serves it.
		if v := ps[1].Version(); v < m.Version {
			t.Fatalf("phase %v returned while replica 1 serves version %d, not %d", step.args, v, m.Version)
		}
	}
}
