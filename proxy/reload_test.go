package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestHotReload: a valid edit of the routes file serves at once; an invalid
// one is refused, logged and shown on a metric while the old table keeps
// serving; fixing the file clears the metric.
func TestHotReload(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	table := extractedTable(svc.URL, "")
	onLegacy := strings.Replace(table, "mode: extracted", "mode: legacy", 1)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: onLegacy})
	ctx := context.Background()
	c := p.Admin(t)
	served := func() string {
		_, e := proxytest.Get(t, p.URL+"/api/orders/1", nil)
		return e.Backend
	}
	if served() != "legacy" {
		t.Fatal("start")
	}

	p.WriteRoutes(t, table)
	proxytest.Eventually(t, 10*time.Second, func() bool { return served() == "orders-svc" }, "the edit was not applied")
	v1, _ := c.Table(ctx)

	for _, bad := range []string{
		"modules: [ {name: a", // not YAML
		strings.Replace(table, "prefix: /api/orders", "prefix: api", 1), // invalid pattern
		strings.Replace(table, "candidate: orders-svc", "candidate: nowhere", 1),
	} {
		p.WriteRoutes(t, bad)
		proxytest.Eventually(t, 10*time.Second, func() bool {
			return metric(t, p, "strangler_proxy_routes_file_invalid") == 1
		}, "the bad file was not flagged")
		if served() != "orders-svc" {
			t.Fatal("a bad file changed what serves")
		}
		if v, _ := c.Table(ctx); v.Version != v1.Version {
			t.Fatalf("a bad file moved the version to %d", v.Version)
		}
		// Reset the flag for the next bad file.
		p.WriteRoutes(t, table+"\n")
		proxytest.Eventually(t, 10*time.Second, func() bool {
			return metric(t, p, "strangler_proxy_routes_file_invalid") == 0
		}, "fixing the file did not clear the flag")
	}
	if !strings.Contains(p.Log.String(), "routes file refused; the previous table keeps serving") {
		t.Fatal("the refusal was not logged")
	}
	if metric(t, p, "strangler_proxy_routes_file_reloads_total", `result="error"`) != 3 {
		t.Error("reload errors not counted")
	}
	audit, _ := c.Audit(ctx, "", 50)
	if len(audit) == 0 || audit[0].Action != "reload" || !strings.HasPrefix(audit[0].Actor, "file:") {
		t.Fatalf("reloads not audited: %+v", audit)
	}
}
