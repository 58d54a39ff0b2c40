package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

const registryTable = `
backends:
  orders-svc:
    service: orders
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    mode: extracted
    routes: [{id: orders, prefix: /api/orders}]
`

// TestServiceRegistry: a service backend has no instance until one
// registers (legacy serves meanwhile); a registered instance with a
// heartbeat serves; when it deregisters, or its TTL runs out, legacy serves
// again.
func TestServiceRegistry(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc1 := proxytest.EchoBackend(t, "svc-1")
	svc2 := proxytest.EchoBackend(t, "svc-2")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: registryTable})
	c := p.Admin(t)
	served := func() string {
		resp, e := proxytest.Get(t, p.URL+"/api/orders/1", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return e.Backend
	}
	if served() != "legacy" {
		t.Fatal("no instance yet: legacy should serve")
	}
	if metric(t, p, "strangler_proxy_fallbacks_total", `reason="no_instance"`) != 1 {
		t.Error("the fallback was not counted as no_instance")
	}

	ctx, cancel := context.WithCancel(context.Background())
	kaDone := make(chan error, 1)
	go func() {
		kaDone <- c.Keepalive(ctx, "orders", svc1.URL, 3*time.Second, func(err error) { t.Logf("heartbeat: %v", err) })
	}()
	proxytest.Eventually(t, 10*time.Second, func() bool { return served() == "svc-1" }, "the registered instance does not serve")
	// It outlives its TTL thanks to the heartbeat.
	time.Sleep(3500 * time.Millisecond)
	if served() != "svc-1" {
		t.Fatal("the heartbeat did not keep the registration")
	}

	// A second instance without heartbeat joins, then expires.
	if err := c.Register(context.Background(), "orders", svc2.URL, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	proxytest.Eventually(t, 10*time.Second, func() bool { seen[served()] = true; return seen["svc-1"] && seen["svc-2"] }, "requests are not spread over both instances: %v", seen)
	proxytest.Eventually(t, 15*time.Second, func() bool {
		svcs, _ := c.Services(context.Background())
		return len(svcs) == 1 && len(svcs[0].Instances) == 1 && svcs[0].Instances[0].URL == svc1.URL
	}, "the instance without heartbeat did not expire")

	cancel()
	if err := <-kaDone; err != nil {
		t.Fatal(err)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool { return served() == "legacy" }, "after deregistering, legacy should serve")
}

// TestRegistryBadInput refuses malformed registrations with problems.
func TestRegistryBadInput(t *testing.T) {
	p := proxytest.Start(t, proxytest.Config{})
	for _, tc := range []struct{ path, body string }{
		{"/v1/services/orders/instances", `{"url":"ftp://x"}`},
		{"/v1/services/orders/instances", `{"url":"http://127.0.0.1:9/path"}`},
		{"/v1/services/orders/instances", `{"url":"http://127.0.0.1:9","ttl_seconds":-5}`},
		{"/v1/services/Bad%20Name/instances", `{"url":"http://127.0.0.1:9"}`},
	} {
		resp, body := adminDo(t, http.MethodPut, p.AdminURL+tc.path, proxytest.Token, tc.body)
		if resp.StatusCode != 422 {
			t.Errorf("%s %s: %d %v", tc.path, tc.body, resp.StatusCode, body)
		}
	}
	resp, _ := adminDo(t, http.MethodPut, p.AdminURL+"/v1/services/orders/instances", proxytest.Token, `{"url":`)
	if resp.StatusCode != 400 {
		t.Errorf("malformed JSON: %d", resp.StatusCode)
	}
	resp, _ = adminDo(t, http.MethodDelete, p.AdminURL+"/v1/services/orders/instances?url=http://127.0.0.1:9", proxytest.Token, "")
	if resp.StatusCode != 404 {
		t.Errorf("deregistering an unknown instance: %d", resp.StatusCode)
	}
}

// TestActiveHealthCheck takes an instance that fails its health checks out
// of the rotation and brings it back when it recovers.
func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	flaky := proxytest.HandlerBackend(t, "flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"backend":"flaky"}`)
	}))
	steady := proxytest.HandlerBackend(t, "steady", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"backend":"steady"}`)
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: steady.URL, Routes: `
backends:
  pool:
    urls: ["` + flaky.URL + `", "` + steady.URL + `"]
    health_check: {path: /healthz, interval: 100ms, unhealthy_after: 2, healthy_after: 2}
modules:
  - name: default
    legacy: pool
    routes: [{id: default, prefix: /}]
`})
	count := func(n int) map[string]int {
		out := map[string]int{}
		for range n {
			_, body := getBody(t, p.URL+"/x")
			out[body]++
		}
		return out
	}
	if got := count(20); got[`{"backend":"flaky"}`] == 0 {
		t.Fatalf("flaky serves nothing while healthy: %v", got)
	}
	sick.Store(true)
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_backend_instances", `backend="pool"`, `state="unhealthy"`) == 1
	}, "the failing instance was not marked unhealthy")
	if got := count(20); got[`{"backend":"flaky"}`] != 0 {
		t.Fatalf("an unhealthy instance still serves: %v", got)
	}
	bs, _ := p.Admin(t).Backends(context.Background())
	var pool api.Backend
	for _, b := range bs {
		if b.Name == "pool" {
			pool = b
		}
	}
	if len(pool.Instances) != 2 || pool.Instances[0].Healthy == pool.Instances[1].Healthy {
		t.Fatalf("backends view: %+v", pool)
	}
	sick.Store(false)
	proxytest.Eventually(t, 10*time.Second, func() bool { return count(6)[`{"backend":"flaky"}`] > 0 }, "the recovered instance did not come back")
}

// TestInstanceRestartLeavesNoStaleConnections: an instance whose process
// dies (every connection closed at once) fails its health checks, comes
// back on the same address and passes them again; the writes sent to it
// then go over new connections, not over the pooled ones to the process
// that died, and every one is answered.
func TestInstanceRestartLeavesNoStaleConnections(t *testing.T) {
	b := newRestartable(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: "http://" + b.addr, Routes: `
backends:
  pool:
    urls: ["http://` + b.addr + `"]
    health_check: {path: /healthz, interval: 50ms, unhealthy_after: 1, healthy_after: 1}
modules:
  - name: default
    legacy: pool
    routes: [{id: default, prefix: /}]
`, Tune: func(c *proxy.Config) {
		// Only the health checks see the instance go: the legacy check,
		// which closes the pool of an unreachable legacy too, waits.
		c.LegacyCheckInterval = time.Hour
	}})
	instances := func(state string) float64 {
		return metric(t, p, "strangler_proxy_backend_instances", `backend="pool"`, `state="`+state+`"`)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool { return instances("healthy") == 1 }, "the instance is not healthy")
	if failed := postAll(t, p, 32); len(failed) > 0 {
		t.Fatalf("before the crash: %d writes failed: %v", len(failed), failed)
	}
	b.kill()
	proxytest.Eventually(t, 10*time.Second, func() bool { return instances("unhealthy") == 1 }, "the dead instance was not marked unhealthy")
	b.start(t)
	proxytest.Eventually(t, 10*time.Second, func() bool { return instances("healthy") == 1 }, "the restarted instance did not come back")
	if failed := postAll(t, p, 32); len(failed) > 0 {
		t.Fatalf("after the instance came back: %d of 32 writes failed: %v", len(failed), failed)
	}
}

// TestOutlierEjection ejects an instance that fails requests in a row.
func TestOutlierEjection(t *testing.T) {
	var badHits atomic.Int64
	bad := proxytest.HandlerBackend(t, "bad", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	good := proxytest.EchoBackend(t, "good")
	p := proxytest.Start(t, proxytest.Config{Legacy: good.URL, Routes: `
backends:
  pool:
    urls: ["` + bad.URL + `", "` + good.URL + `"]
    breaker: {disabled: true}
    outlier: {consecutive_failures: 3, ejection: 1m}
modules:
  - name: default
    legacy: pool
    retries: 0
    routes: [{id: default, prefix: /}]
`})
	for range 40 {
		getBody(t, p.URL+"/x")
	}
	if badHits.Load() != 3 {
		t.Fatalf("the bad instance got %d requests; it should be ejected after 3", badHits.Load())
	}
	if metric(t, p, "strangler_proxy_outlier_ejections_total", `backend="pool"`) != 1 {
		t.Error("ejection not counted")
	}
}

// TestLeastRequests prefers the instance with fewer requests in flight.
func TestLeastRequests(t *testing.T) {
	release := make(chan struct{})
	slow := proxytest.HandlerBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "slow")
	}))
	fast := proxytest.HandlerBackend(t, "fast", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "fast")
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: fast.URL, Routes: `
backends:
  pool:
    urls: ["` + slow.URL + `", "` + fast.URL + `"]
    balance: least_requests
modules:
  - name: default
    legacy: pool
    routes: [{id: default, prefix: /}]
`})
	defer close(release)
	// Park a few requests on the slow instance.
	for range 4 {
		go func() { _, _ = http.Get(p.URL + "/park") }()
	}
	proxytest.Eventually(t, 10*time.Second, func() bool { return slow.Hits() >= 1 }, "nothing reached the slow instance")
	time.Sleep(100 * time.Millisecond)
	parked := slow.Hits()
	fastBefore := fast.Hits()
	client := &http.Client{Timeout: 5 * time.Second}
	for range 30 {
		resp, err := client.Get(p.URL + "/x")
		if err != nil {
			t.Fatalf("a request went to the busy instance: %v", err)
		}
		resp.Body.Close()
	}
	if slow.Hits() != parked || fast.Hits()-fastBefore != 30 {
		t.Fatalf("least_requests sent %d to the busy instance", slow.Hits()-parked)
	}
}
