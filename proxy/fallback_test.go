package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// deadURL returns a loopback URL where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func extractedTable(candidate string, extra string) string {
	return `
backends:
  orders-svc:
    urls: ["` + candidate + `"]
` + extra + `
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    mode: extracted
    routes: [{id: orders, prefix: /api/orders}]
`
}

// metric returns the sum of the series of name whose labels contain
// every fragment, 0 when there is none.
func metric(t *testing.T, p *proxytest.Proxy, name string, fragments ...string) float64 {
	t.Helper()
	total := 0.0
	for _, l := range metricLines(t, p, name, fragments...) {
		var v float64
		fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
		total += v
	}
	return total
}

// metricLines returns the exposition lines of the series of name whose
// labels contain every fragment.
func metricLines(t *testing.T, p *proxytest.Proxy, name string, fragments ...string) []string {
	t.Helper()
	var out []string
lines:
	for _, l := range strings.Split(scrape(t, p), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		for _, f := range fragments {
			if !strings.Contains(l, f) {
				continue lines
			}
		}
		out = append(out, l)
	}
	return out
}

// TestFallbackDeadCandidate: a module flipped to a candidate that is down
// serves every GET from legacy, with zero client errors, and counts it.
func TestFallbackDeadCandidate(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: extractedTable(deadURL(t), "")})
	const n = 300
	var failed atomic.Int64
	done := make(chan struct{})
	for w := range 6 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := w; i < n; i += 6 {
				resp, err := http.Get(fmt.Sprintf("%s/api/orders/%d", p.URL, i))
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"backend":"legacy"`) {
					failed.Add(1)
				}
			}
		}()
	}
	for range 6 {
		<-done
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d GETs failed", failed.Load(), n)
	}
	fb := metric(t, p, "strangler_proxy_fallbacks_total", `module="orders"`)
	if fb != n {
		t.Fatalf("fallbacks counted: %v, want %d", fb, n)
	}
	// The breaker opens after the first failures; later requests skip the
	// candidate without dialing it.
	if open := metric(t, p, "strangler_proxy_fallbacks_total", `reason="breaker_open"`); open == 0 {
		t.Error("the breaker never opened")
	}
	if st := metric(t, p, "strangler_proxy_breaker_state", `backend="orders-svc"`); st != 2 {
		t.Errorf("breaker state %v, want 2 (open)", st)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(p.Access.String(), `"decision":"fallback_breaker_open"`) &&
			strings.Contains(p.Access.String(), `"decision":"fallback_unreachable"`)
	}, "the access log does not give the fallback reasons:\n%s", p.Access.String())
	m, err := p.Admin(t).Module(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if m.Fallbacks != n {
		t.Errorf("module reports %d fallbacks, want %d", m.Fallbacks, n)
	}
}

// TestFallbackOn5xx: an idempotent request the candidate fails with a 5xx
// is served by legacy; a POST is never sent twice.
func TestFallbackOn5xx(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	var candPosts atomic.Int64
	cand := proxytest.HandlerBackend(t, "orders-svc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			candPosts.Add(1)
		}
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	}))
	// A breaker that never opens, so every request meets the 500.
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: extractedTable(cand.URL, "    breaker: {disabled: true}")})

	resp, e := proxytest.Get(t, p.URL+"/api/orders/1", nil)
	if resp.StatusCode != http.StatusOK || e == nil || e.Backend != "legacy" {
		t.Fatalf("GET: %d %+v", resp.StatusCode, e)
	}
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(method, p.URL+"/api/orders/1", strings.NewReader(`{"qty":1}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"backend":"legacy"`) || (method == http.MethodPut && !strings.Contains(string(body), `"body":"{\"qty\":1}"`)) {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
		}
	}
	legacyBefore := legacy.Hits()
	resp, err := http.Post(p.URL+"/api/orders", "application/json", strings.NewReader(`{"item":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST: %d, want the candidate's 500", resp.StatusCode)
	}
	if candPosts.Load() != 1 || legacy.Hits() != legacyBefore {
		t.Fatalf("POST sent %d times to the candidate and %d to legacy; want once, never", candPosts.Load(), legacy.Hits()-legacyBefore)
	}
	if got := metric(t, p, "strangler_proxy_fallbacks_total", `reason="status_5xx"`); got != 3 {
		t.Errorf("status_5xx fallbacks %v, want 3", got)
	}
}

// TestFallbackPostUnreachable: a POST to a candidate that refuses the
// connection was never sent, so legacy may serve it.
func TestFallbackPostUnreachable(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: extractedTable(deadURL(t), "")})
	resp, err := http.Post(p.URL+"/api/orders", "application/json", strings.NewReader(`{"item":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"backend":"legacy"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestTimeoutAnswers504 gives a slow legacy backend's client a 504
// problem, and a stream that keeps sending is not cut by the timeout.
func TestTimeoutAnswers504(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/drip" {
			f := w.(http.Flusher)
			for range 6 {
				fmt.Fprint(w, "tick\n")
				f.Flush()
				time.Sleep(150 * time.Millisecond)
			}
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: `
modules:
  - name: default
    timeout: 400ms
    retries: 0
    routes: [{id: default, prefix: /}]
`})
	resp, _ := proxytest.Get(t, p.URL+"/slow", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// 6 ticks 150 ms apart take 900 ms, longer than the 400 ms timeout,
	// but no gap is.
	resp, err := http.Get(p.URL + "/drip")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(body), "tick") != 6 {
		t.Fatalf("stream cut: %q %v", body, err)
	}
}

// TestRetryOtherInstance retries an idempotent request on another
// instance after a 503, and not a POST.
func TestRetryOtherInstance(t *testing.T) {
	var badHits atomic.Int64
	bad := proxytest.HandlerBackend(t, "bad", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	good := proxytest.EchoBackend(t, "good")
	p := proxytest.Start(t, proxytest.Config{Legacy: good.URL, Routes: `
backends:
  pool:
    urls: ["` + bad.URL + `", "` + good.URL + `"]
    breaker: {disabled: true}
    outlier: {consecutive_failures: -1}
    retry_budget: {ratio: 1, min_per_second: 1000}
modules:
  - name: default
    legacy: pool
    retries: 1
    routes: [{id: default, prefix: /}]
`})
	for i := range 20 {
		resp, _ := proxytest.Get(t, fmt.Sprintf("%s/x/%d", p.URL, i), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d: %d", i, resp.StatusCode)
		}
	}
	if badHits.Load() == 0 {
		t.Fatal("round robin never tried the bad instance")
	}
	if r := metric(t, p, "strangler_proxy_retries_total", `backend="pool"`); r != float64(badHits.Load()) {
		t.Errorf("retries %v, want %d", r, badHits.Load())
	}
	// A POST that meets the bad instance gets its 503.
	posts503 := 0
	for range 10 {
		resp, err := http.Post(p.URL+"/x", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			posts503++
		}
	}
	if posts503 == 0 {
		t.Fatal("no POST met the bad instance; round robin should alternate")
	}
}

// TestRetryBudget stops retrying once the budget is spent, so that a failing
// backend does not get its load multiplied.
func TestRetryBudget(t *testing.T) {
	bad := proxytest.HandlerBackend(t, "bad", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	also := proxytest.HandlerBackend(t, "also-bad", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: bad.URL, Routes: `
backends:
  pool:
    urls: ["` + bad.URL + `", "` + also.URL + `"]
    breaker: {disabled: true}
    outlier: {consecutive_failures: -1}
    retry_budget: {ratio: 0.01, min_per_second: 1}
modules:
  - name: default
    legacy: pool
    retries: 3
    routes: [{id: default, prefix: /}]
`})
	const n = 50
	for range n {
		resp, _ := proxytest.Get(t, p.URL+"/x", nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	retries := metric(t, p, "strangler_proxy_retries_total", `backend="pool"`)
	exhausted := metric(t, p, "strangler_proxy_retry_budget_exhausted_total", `backend="pool"`)
	// Without a budget, 50 requests with 3 retries each would send 150
	// retries. The budget allows about 1% plus one a second.
	if retries > 10 || exhausted == 0 {
		t.Fatalf("%v retries sent, %v refused by the budget", retries, exhausted)
	}
	if bad.Hits()+also.Hits() != n+int(retries) {
		t.Fatalf("backends saw %d requests, want %d", bad.Hits()+also.Hits(), n+int(retries))
	}
}

// TestFallbackCountsCandidateAnswer: when legacy serves a request the
// candidate failed, the candidate's answer (or its failure to give one) is
// still counted under the candidate, and legacy's under legacy.
func TestFallbackCountsCandidateAnswer(t *testing.T) {
	cases := []struct {
		name, code string
		candidate  func(t *testing.T) string
	}{
		{"status_500", "5xx", func(t *testing.T) string {
			return proxytest.HandlerBackend(t, "orders-svc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			})).URL
		}},
		{"unreachable", "error", deadURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			legacy := proxytest.EchoBackend(t, "legacy")
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: extractedTable(tc.candidate(t), "    breaker: {disabled: true}")})
			const n = 3
			for range n {
				if resp, e := proxytest.Get(t, p.URL+"/api/orders/1", nil); resp.StatusCode != http.StatusOK || e == nil || e.Backend != "legacy" {
					t.Fatalf("GET: %d %+v, want legacy's 200", resp.StatusCode, e)
				}
			}
			if got := metric(t, p, "strangler_proxy_requests_total", `backend="orders-svc"`, `code="`+tc.code+`"`); got != n {
				t.Errorf("candidate's %s counted %v times, want %d", tc.code, got, n)
			}
			if got := metric(t, p, "strangler_proxy_requests_total", `route="orders"`, `backend="legacy"`, `code="2xx"`); got != n {
				t.Errorf("legacy's 2xx counted %v times, want %d", got, n)
			}
		})
	}
}
