package proxy_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// sendAll sends method requests to each path of the proxy at base, failing
// the test on a transport error.
func sendAll(t *testing.T, base, method string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// inventoryRoute returns the route of inv, failing the test without it.
func inventoryRoute(t *testing.T, inv *api.Inventory, module, route string) api.InventoryRoute {
	t.Helper()
	for _, r := range inv.Routes {
		if r.Module == module && r.Route == route {
			return r
		}
	}
	t.Fatalf("inventory has no route %s/%s: %+v", module, route, inv.Routes)
	return api.InventoryRoute{}
}

// templateCounts maps a route's templates to their requests.
func templateCounts(r api.InventoryRoute) map[string]int64 {
	out := map[string]int64{}
	for _, tm := range r.Templates {
		out[tm.Template] = tm.Requests
	}
	return out
}

func readInventory(t *testing.T, c *adminclient.Client, unusedFor string) *api.Inventory {
	t.Helper()
	inv, err := c.Inventory(context.Background(), "", unusedFor)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestInventorySurvivesRestart counts traffic through a proxy on the file
// store, restarts it on the same state dir, and counts more: the
// inventory holds both, by template, with the side and the status class;
// discover proposes the templates; the metrics have the route's series.
func TestInventorySurvivesRestart(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	routesYAML := extractedTable(svc.URL, "") + "  - name: reports\n    routes: [{id: reports, prefix: /reports}]\n"
	dir := t.TempDir()
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir, Routes: routesYAML})
	sendAll(t, p.URL, http.MethodGet, "/api/articles/how-to-brew", "/api/articles/why-tea-matters", "/api/users/7", "/api/orders/1", "/api/orders/2")
	sendAll(t, p.URL, http.MethodPost, "/api/users")
	p.Stop(t)

	p = proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir, Routes: routesYAML})
	sendAll(t, p.URL, http.MethodGet, "/api/users/8", "/api/orders/3")
	inv := readInventory(t, p.Admin(t), "")

	def := inventoryRoute(t, inv, "default", "default")
	if def.Requests != 5 || def.Legacy != 5 || def.Candidate != 0 || def.Classes["2xx"] != 5 || def.LastLegacy == nil || !def.InTable {
		t.Errorf("route default = %+v, want 5 requests, all legacy, 2xx", def.Counts)
	}
	if got := templateCounts(def); got["/api/articles/{slug}"] != 2 || got["/api/users/{id}"] != 2 || got["/api/users"] != 1 {
		t.Errorf("route default's templates = %v", got)
	}
	for _, tm := range def.Templates {
		if tm.Template == "/api/users" && strings.Join(tm.Methods, ",") != "POST" {
			t.Errorf("template /api/users has methods %v, want POST", tm.Methods)
		}
	}
	orders := inventoryRoute(t, inv, "orders", "orders")
	if orders.Requests != 3 || orders.Candidate != 3 || orders.LegacyShare != 0 || templateCounts(orders)["/api/orders/{id}"] != 3 {
		t.Errorf("route orders = %+v %v, want 3 requests served by the candidate", orders.Counts, templateCounts(orders))
	}
	if r := inventoryRoute(t, inv, "reports", "reports"); r.Requests != 0 || r.LastSeen != nil {
		t.Errorf("route reports, never requested = %+v", r.Counts)
	}

	// Retirable: the routes legacy served nothing of, orders (extracted)
	// and reports (unused), not default.
	unused := readInventory(t, p.Admin(t), "30d")
	var names []string
	for _, r := range unused.Routes {
		if !r.Retirable {
			t.Errorf("unused_for lists %s, not retirable", r.Route)
		}
		names = append(names, r.Route)
	}
	if strings.Join(names, ",") != "orders,reports" || unused.Since == nil {
		t.Errorf("unused_for=30d lists %v (since %v), want orders,reports", names, unused.Since)
	}

	disc, err := p.Admin(t).Discover(context.Background(), adminclient.DiscoverOptions{Module: "default"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range disc.Modules {
		for _, tm := range m.Templates {
			paths = append(paths, m.Name+" "+tm.Path)
		}
	}
	if got := strings.Join(paths, "; "); got != "articles /api/articles/{slug}; users /api/users; users /api/users/{id}" {
		t.Errorf("discover = %s", got)
	}

	resp, err := http.Get(p.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The series are this process's: the restarted proxy has seen one
	// template of default.
	for _, want := range []string{
		`strangler_proxy_route_last_seen_timestamp_seconds{backend="orders-svc",module="orders",route="orders"}`,
		`strangler_proxy_route_templates{module="default",route="default"} 1`,
		`strangler_proxy_route_template_overflow_total{module="default",route="default"} 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A bad period is a problem document.
	if _, err := p.Admin(t).Inventory(context.Background(), "", "thirty days"); adminclient.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("unused_for=thirty days: %v, want 400", err)
	}
}

// TestInventoryReplicasMerge sends traffic through two replicas on one
// Postgres store: the inventory that either answers holds the counts of
// both, once the other has flushed (at its stop).
func TestInventoryReplicasMerge(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.replicas[0], c.replicas[1]
	sendAll(t, a.URL, http.MethodGet, "/api/articles/1", "/api/articles/2", "/api/orders/9")
	sendAll(t, b.URL, http.MethodGet, "/api/articles/3", "/x")
	b.Stop(t)
	inv := readInventory(t, a.Admin(t), "")
	def := inventoryRoute(t, inv, "default", "default")
	if def.Requests != 4 || templateCounts(def)["/api/articles/{id}"] != 3 || templateCounts(def)["/x"] != 1 {
		t.Errorf("route default over two replicas = %+v %v, want 4 requests, 3 of /api/articles/{id}", def.Counts, templateCounts(def))
	}
	// A second read adds nothing: the deltas were sent once.
	if again := inventoryRoute(t, readInventory(t, a.Admin(t), ""), "default", "default"); again.Requests != 4 {
		t.Errorf("second read = %d requests, want 4", again.Requests)
	}
	if o := inventoryRoute(t, inv, "orders", "orders"); o.Requests != 1 {
		t.Errorf("route orders = %+v, want 1 request", o.Counts)
	}
}

// TestChaosInventoryRandomPaths floods a proxy with distinct random paths,
// as a scanner would: the inventory keeps control.MaxUsageTemplates
// templates of the route, counts the rest in (other), and loses no request.
func TestChaosInventoryRandomPaths(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL})
	const n = control.MaxUsageTemplates + 300
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for i := 0; i < n; i++ {
		resp, err := hc.Get(p.URL + "/scan/" + randomWord(12))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	def := inventoryRoute(t, readInventory(t, p.Admin(t), ""), "default", "default")
	other := templateCounts(def)[control.OtherTemplate]
	chaostest.Report(t, len(def.Templates) == control.MaxUsageTemplates+1 && other == n-control.MaxUsageTemplates && def.Requests == n,
		fmt.Sprintf("%d requests with distinct random paths", n),
		fmt.Sprintf("%d templates and (other), %d requests in (other), %d in all", control.MaxUsageTemplates, n-control.MaxUsageTemplates, n),
		fmt.Sprintf("%d templates, %d in (other), %d in all", len(def.Templates), other, def.Requests))
}

// randomWord is n random lower-case letters: a segment that no type
// heuristic turns into a parameter.
func randomWord(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(rand.IntN(26))
	}
	return string(b)
}
