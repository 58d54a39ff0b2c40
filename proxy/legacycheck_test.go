package proxy_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

// TestLegacyRestartLeavesNoStaleConnections: a legacy process that dies
// (every connection closed at once, as SIGKILL does) and comes back on the
// same address while no request comes in is seen unreachable meanwhile; the
// proxy must then not send the next requests over the pooled connections
// to the process that died, which fail at once (a POST, not retried, fails
// the client). Every request after the restart is answered.
func TestLegacyRestartLeavesNoStaleConnections(t *testing.T) {
	b := newRestartable(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: "http://" + b.addr, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.LegacyCheckInterval = 50 * time.Millisecond
	}})
	_ = waitReadyz(t, p, http.StatusOK)
	// Concurrent writes leave a pool of connections to the first process.
	if failed := postAll(t, p, 32); len(failed) > 0 {
		t.Fatalf("before the crash: %d writes failed: %v", len(failed), failed)
	}
	// The process dies, and the proxy sees it unreachable.
	b.kill()
	_ = waitReadyz(t, p, http.StatusServiceUnavailable)
	b.start(t)
	_ = waitReadyz(t, p, http.StatusOK)
	if failed := postAll(t, p, 32); len(failed) > 0 {
		t.Fatalf("after legacy came back: %d of 32 writes failed: %v", len(failed), failed)
	}
}

// restartable is a backend process that can die and come back on the
// same address: it answers every request 201.
type restartable struct {
	addr string
	srv  *http.Server
}

func newRestartable(t *testing.T) *restartable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &restartable{addr: ln.Addr().String()}
	b.serve(t, ln)
	return b
}

func (b *restartable) serve(t *testing.T, ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Close() })
	b.srv = srv
}

// kill closes the listener and every connection at once, as a process's
// death does.
func (b *restartable) kill() { _ = b.srv.Close() }

// start listens on the same address again.
func (b *restartable) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", b.addr, err)
	}
	b.serve(t, ln)
}

// postAll sends n writes through p at once and returns the statuses of
// those not answered 201.
func postAll(t *testing.T, p *proxytest.Proxy, n int) (failed []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(p.URL+"/api/orders", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				mu.Lock()
				failed = append(failed, resp.Status)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}
