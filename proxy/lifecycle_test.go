package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// bareConfig is the least a proxy needs: loopback listeners, a token, a
// legacy and a state dir, with every other field at its zero value.
func bareConfig(t *testing.T, legacy, routes string) proxy.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := proxy.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AdminToken: proxytest.Token, Legacy: legacy, StateDir: filepath.Join(dir, "state")}
	if routes != "" {
		cfg.RoutesFile = filepath.Join(dir, "routes.yaml")
		if err := os.WriteFile(cfg.RoutesFile, []byte(routes), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// runProxy runs p until the returned stop is called, which waits for Run
// to return and fails the test if it does not within 30s or fails.
func runProxy(t *testing.T, p *proxy.Proxy) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	proxytest.WaitReady(t, "http://"+p.AdminAddr()+"/healthz")
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of its context's end")
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestNewWithoutDefaults: a config that passed Validate but was never
// defaulted builds a proxy that serves, takes request bodies and shadows,
// because New applies the defaults itself.
func TestNewWithoutDefaults(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	cand := proxytest.EchoBackend(t, "orders-svc")
	cfg := bareConfig(t, legacy.URL, shadowTable(cand.URL, ""))
	p, err := proxy.New(cfg, httpx.Discard, proxy.WithAccessLogWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	runProxy(t, p)
	resp, err := http.Post("http://"+p.Addr()+"/api/orders", "application/json", strings.NewReader(`{"item":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"body":"{\"item\":1}"`) {
		t.Fatalf("POST with a body: %d %s, want legacy's echo of the body", resp.StatusCode, body)
	}
	if resp, e := proxytest.Get(t, "http://"+p.Addr()+"/api/orders/1", nil); resp.StatusCode != http.StatusOK || e == nil || e.Backend != "legacy" {
		t.Fatalf("GET: %d %+v, want legacy's answer", resp.StatusCode, e)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool { return cand.Hits() > 0 }, "the candidate never got a shadow copy")
}

// healthTable gives legacy an active health check every 20ms.
const healthTable = `
backends:
  legacy:
    urls: ["%s"]
    health_check: {path: /healthz, interval: 20ms}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
`

// TestHealthChecksOnlyWhileRunning: New starts no health check, Run does,
// and none runs once Run has returned.
func TestHealthChecksOnlyWhileRunning(t *testing.T) {
	var probes atomic.Int64
	legacy := proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			probes.Add(1)
		}
	}))
	cfg := bareConfig(t, legacy.URL, strings.Replace(healthTable, "%s", legacy.URL, 1))
	cfg.SetDefaults(t.TempDir())
	p, err := proxy.New(cfg, httpx.Discard, proxy.WithAccessLogWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	// Twenty-five intervals: a checker started by New would have probed.
	time.Sleep(500 * time.Millisecond)
	if n := probes.Load(); n != 0 {
		t.Fatalf("%d health checks ran before Run", n)
	}
	stop := runProxy(t, p)
	proxytest.Eventually(t, 10*time.Second, func() bool { return probes.Load() > 0 }, "no health check ran while Run ran")
	stop()
	after := probes.Load()
	time.Sleep(500 * time.Millisecond)
	if n := probes.Load(); n != after {
		t.Fatalf("%d health checks ran after Run returned", n-after)
	}
}

// TestCloseWithoutRun: Close releases the listeners of a proxy that never
// ran, and a Run after it fails instead of serving.
func TestCloseWithoutRun(t *testing.T) {
	cfg := bareConfig(t, "http://127.0.0.1:1", "")
	cfg.SetDefaults(t.TempDir())
	p, err := proxy.New(cfg, httpx.Discard, proxy.WithAccessLogWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{p.Addr(), p.AdminAddr()} {
		if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", addr)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.Run(context.Background()); err == nil {
		t.Error("Run after Close returned nil, want an error")
	}
}

// wsEcho is a WebSocket backend that upgrades with header and answers each
// message with prefix and the message. The error that ends the
// conversation goes to ended, unless it is nil.
func wsEcho(prefix string, header http.Header, ended chan<- error) http.HandlerFunc {
	up := websocket.Upgrader{}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, header)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err == nil {
				err = c.WriteMessage(mt, append([]byte(prefix), msg...))
			}
			if err != nil {
				if ended != nil {
					ended <- err
				}
				return
			}
		}
	}
}

// TestWebSocketEndsWithRun: an open WebSocket splice is closed on both
// sides when Run's context ends, and Run returns.
func TestWebSocketEndsWithRun(t *testing.T) {
	backendDone := make(chan error, 1)
	backend := proxytest.HandlerBackend(t, "ws", wsEcho("", nil, backendDone))
	cfg := bareConfig(t, backend.URL, legacyOnly)
	p, err := proxy.New(cfg, httpx.Discard, proxy.WithAccessLogWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProxy(t, p)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+p.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo through the splice: %q %v", msg, err)
	}
	stop()
	_, _, err = c.ReadMessage()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client's side of the splice after Run returned: %v, want it closed", err)
	}
	select {
	case <-backendDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend's side of the splice stayed open after Run returned")
	}
}

// TestWebSocketDialsLikeBackends: the backend side of a WebSocket is
// dialled the way every backend connection is, not around it.
func TestWebSocketDialsLikeBackends(t *testing.T) {
	dials, restore := proxy.CountBackendDials()
	t.Cleanup(restore)
	up := websocket.Upgrader{}
	backend := proxytest.HandlerBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			c.Close()
		}
	}))
	// The legacy check dials too: once at start, which readiness waits
	// for, and then not for an hour.
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) { c.LegacyCheckInterval = time.Hour }})
	_ = waitReadyz(t, p, http.StatusOK)
	before := dials()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := dials() - before; n != 1 {
		t.Fatalf("the upgrade made %d dials through the backends' dialer, want 1", n)
	}
}

// TestWebSocketBackendCloseReachesClient: when the backend ends a
// WebSocket, the client's side closes too, even while the client is
// silent.
func TestWebSocketBackendCloseReachesClient(t *testing.T) {
	up := websocket.Upgrader{}
	backend := proxytest.HandlerBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			c.Close()
		}
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _, err = c.ReadMessage()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read after the backend closed: %v, want the connection closed", err)
	}
}
