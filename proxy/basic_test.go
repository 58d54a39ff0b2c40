package proxy_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestRoutingAndObservability routes to legacy and the candidate and
// checks the metrics and the access log that the requests leave.
func TestRoutingAndObservability(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: extractedTable(svc.URL, "")})
	resp, e := proxytest.Get(t, p.URL+"/api/orders/7?x=1", map[string]string{"X-Request-ID": "obs-1"})
	if resp.StatusCode != http.StatusOK || e == nil || e.Backend != "orders-svc" || e.URI != "/api/orders/7?x=1" {
		t.Fatalf("got %d %+v", resp.StatusCode, e)
	}
	resp, e = proxytest.Get(t, p.URL+"/other", nil)
	if resp.StatusCode != http.StatusOK || e == nil || e.Backend != "legacy" {
		t.Fatalf("got %d %+v", resp.StatusCode, e)
	}
	resp, _ = proxytest.Get(t, p.URL+"/api/orders/missing-404", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}

	for _, tc := range []struct {
		name      string
		fragments []string
		want      float64
	}{
		{"strangler_proxy_requests_total", []string{`route="orders"`, `backend="orders-svc"`, `code="2xx"`, `module="orders"`}, 2},
		{"strangler_proxy_requests_total", []string{`route="default"`, `backend="legacy"`, `code="2xx"`}, 1},
		{"strangler_proxy_request_duration_seconds_count", []string{`route="orders"`, `backend="orders-svc"`, `code="2xx"`}, 2},
		{"strangler_proxy_table_version", nil, 1},
		{"strangler_proxy_breaker_state", []string{`backend="orders-svc"`}, 0},
		{"strangler_proxy_backend_instances", []string{`backend="legacy"`, `state="healthy"`}, 1},
	} {
		if got := metric(t, p, tc.name, tc.fragments...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.fragments, got, tc.want)
		}
	}

	var line map[string]any
	proxytest.Eventually(t, 10*time.Second, func() bool {
		for _, l := range p.Access.Lines() {
			if l["request_id"] == "obs-1" {
				line = l
				return true
			}
		}
		return false
	}, "no access log line for the request")
	for k, v := range map[string]any{"msg": "access", "route": "orders", "module": "orders", "backend": "orders-svc",
		"decision": "extracted", "status": float64(200), "method": "GET", "path": "/api/orders/7", "client": "127.0.0.1"} {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	if tid, _ := line["trace_id"].(string); len(tid) != 32 {
		t.Errorf("trace_id %v", line["trace_id"])
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms missing: %v", line)
	}

	mods, err := p.Admin(t).Modules(context.Background())
	if err != nil || len(mods) != 2 || mods[1].Name != "orders" || mods[1].Routes[0].Match != "prefix /api/orders" {
		t.Fatalf("modules: %+v %v", mods, err)
	}
	if strings.Contains(p.Log.String(), `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", p.Log.String())
	}
}

// TestRunWithCancelledContext stops a proxy whose context ends before its
// data plane has started serving: Run must return, not wait on a server
// that shutdown never reached.
func TestRunWithCancelledContext(t *testing.T) {
	for i := 0; i < 20; i++ {
		cfg := proxy.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AdminToken: proxytest.Token, Legacy: "http://127.0.0.1:9"}
		cfg.SetDefaults(t.TempDir())
		p, err := proxy.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d: Run did not return after its context ended", i)
		}
	}
}
