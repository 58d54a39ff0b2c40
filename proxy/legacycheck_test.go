package proxy_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// adminGet gets path from the admin listener and returns the status and
// the body.
func adminGet(t *testing.T, p *proxytest.Proxy, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.AdminURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz polls /readyz until it answers status, and returns the body.
func waitReadyz(t *testing.T, p *proxytest.Proxy, status int) string {
	t.Helper()
	var body string
	proxytest.Eventually(t, 20*time.Second, func() bool {
		var got int
		got, body = adminGet(t, p, "/readyz")
		return got == status
	}, "/readyz never answered %d (last: %s)", status, body)
	return body
}

// TestLegacyUnreachableAtStart: a proxy started in front of a legacy where
// nothing listens warns, is not ready and says why, and its gauge says 0;
// once legacy listens, it is ready.
func TestLegacyUnreachableAtStart(t *testing.T) {
	dead := deadURL(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: dead, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.LegacyCheckInterval = 50 * time.Millisecond
	}})
	body := waitReadyz(t, p, http.StatusServiceUnavailable)
	if !strings.Contains(body, "legacy_reachable") {
		t.Errorf("/readyz does not say why it is not ready: %s", body)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(p.Log.String(), `"level":"WARN","msg":"legacy backend unreachable`)
	}, "no warning that legacy is unreachable in the log:\n%s", p.Log.String())
	if g := metric(t, p, "strangler_proxy_legacy_reachable", `backend="legacy"`); g != 0 {
		t.Errorf("legacy_reachable %v, want 0", g)
	}
	if n := metric(t, p, "strangler_proxy_legacy_checks_total", `backend="legacy"`, `result="unreachable"`); n == 0 {
		t.Error("no failed check of legacy counted")
	}
	// The monolith comes up where the proxy expects it.
	ln, err := net.Listen("tcp", strings.TrimPrefix(dead, "http://"))
	if err != nil {
		t.Skipf("cannot listen on legacy's address again: %v", err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_ = waitReadyz(t, p, http.StatusOK)
}

// TestLegacyGoesDown: a legacy that stops accepting connections makes the
// proxy not ready, and the gauge falls to 0.
func TestLegacyGoesDown(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.LegacyCheckInterval = 50 * time.Millisecond
	}})
	_ = waitReadyz(t, p, http.StatusOK)
	if g := metric(t, p, "strangler_proxy_legacy_reachable", `backend="legacy"`); g != 1 {
		t.Errorf("legacy_reachable %v while legacy is up, want 1", g)
	}
	legacy.Close()
	_ = waitReadyz(t, p, http.StatusServiceUnavailable)
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_legacy_reachable", `backend="legacy"`) == 0
	}, "legacy_reachable stayed 1 after legacy went down")
}
