package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// shadowTable puts module orders in shadow mode towards candidate.
func shadowTable(candidate, shadowOpts string) string {
	return `
backends:
  orders-svc: {urls: ["` + candidate + `"]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    mode: shadow
` + shadowOpts + `
    routes: [{id: orders, prefix: /api/orders}]
`
}

// jsonBackend answers every request with body(r), recording requests.
type jsonBackend struct {
	*proxytest.Backend
	mu   sync.Mutex
	reqs []*http.Request
	hdrs []http.Header
}

func newJSONBackend(t *testing.T, name string, body func(r *http.Request) string) *jsonBackend {
	jb := &jsonBackend{}
	jb.Backend = proxytest.HandlerBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jb.mu.Lock()
		jb.reqs = append(jb.reqs, r)
		jb.hdrs = append(jb.hdrs, r.Header.Clone())
		jb.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body(r))
	}))
	return jb
}

func (jb *jsonBackend) headers() []http.Header {
	jb.mu.Lock()
	defer jb.mu.Unlock()
	return append([]http.Header(nil), jb.hdrs...)
}

func diffs(t *testing.T, p *proxytest.Proxy) *api.Diffs {
	t.Helper()
	d, err := p.Admin(t).Diffs(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func waitCompared(t *testing.T, p *proxytest.Proxy, n int64) api.ShadowStats {
	t.Helper()
	var st api.ShadowStats
	proxytest.Eventually(t, 15*time.Second, func() bool {
		st = diffs(t, p).Routes[0].Stats
		return st.Compared+st.Errors >= n
	}, "shadow copies were not compared: %+v", st)
	return diffs(t, p).Routes[0].Stats
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestShadowMatchAndMismatch: legacy answers the client, the candidate
// gets a marked copy, and answers are compared per route with readable
// samples of the mismatches.
func TestShadowMatchAndMismatch(t *testing.T) {
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string {
		return `{"id":7,"items":[{"sku":"a","price":12.5},{"sku":"b","price":3}],"path":"` + r.URL.Path + `"}`
	})
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string {
		if strings.HasSuffix(r.URL.Path, "/bad") {
			return `{"id":7,"items":[{"sku":"a","price":13},{"sku":"b","price":3.0}],"path":"` + r.URL.Path + `","extra":true}`
		}
		// Same values, other formatting and member order.
		return `{"path":"` + r.URL.Path + `","items":[{"price":12.50,"sku":"a"},{"sku":"b","price":3}],"id":7}`
	})
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, "")})
	for _, path := range []string{"/api/orders/good", "/api/orders/good", "/api/orders/bad"} {
		code, body := getBody(t, p.URL+path)
		if code != 200 || !strings.Contains(body, `"price":12.5`) {
			t.Fatalf("client did not get legacy's answer: %d %s", code, body)
		}
	}
	st := waitCompared(t, p, 3)
	if st.Compared != 3 || st.Matches != 2 || st.Mismatches != 1 {
		t.Fatalf("stats %+v, want 3 compared, 2 matches, 1 mismatch", st)
	}
	d := diffs(t, p)
	if len(d.Routes[0].Samples) != 1 {
		t.Fatalf("samples %+v", d.Routes[0].Samples)
	}
	s := d.Routes[0].Samples[0]
	text := proxy.FormatSample(s)
	for _, want := range []string{"GET /api/orders/bad", "$.items[0].price: 12.5 → 13", "$.extra: (absent) → true"} {
		if !strings.Contains(text, want) {
			t.Errorf("sample lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "items[1]") {
		t.Errorf("3 and 3.0 are the same number:\n%s", text)
	}
	for _, h := range cand.headers() {
		if h.Get("X-Strangler-Shadow") != "copy" {
			t.Errorf("copy not marked: %v", h)
		}
	}
	if m := metric(t, p, "strangler_proxy_shadow_comparisons_total", `route="orders"`, `result="mismatch"`); m != 1 {
		t.Errorf("mismatch metric %v", m)
	}
	mod, err := p.Admin(t).Module(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if mod.Shadow.Compared != 3 || mod.Shadow.MismatchRate < 0.33 || mod.Shadow.MismatchRate > 0.34 {
		t.Errorf("module summary %+v", mod.Shadow)
	}
}

// TestShadowNoiseCancelling learns that a field which differs between two
// legacy answers is noise, as Diffy does, and keeps reporting real
// differences.
func TestShadowNoiseCancelling(t *testing.T) {
	var n atomic.Int64
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string {
		return fmt.Sprintf(`{"id":1,"generated_at":"%d","server":"legacy-%d","items":[{"seen":%d}]}`, n.Add(1), n.Load(), n.Load())
	})
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string {
		id := 1
		if strings.HasSuffix(r.URL.Path, "/wrong") {
			id = 2
		}
		return fmt.Sprintf(`{"id":%d,"generated_at":"x%d","server":"svc","items":[{"seen":-1}]}`, id, time.Now().UnixNano())
	})
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, `    shadow: {ignore: ["$.server"]}`)})
	getBody(t, p.URL+"/api/orders/1")
	st := waitCompared(t, p, 1)
	if st.Noise != 1 || st.Mismatches != 0 {
		t.Fatalf("first answer: %+v, want noise only", st)
	}
	getBody(t, p.URL+"/api/orders/wrong")
	st = waitCompared(t, p, 2)
	if st.Mismatches != 1 {
		t.Fatalf("a real difference was taken for noise: %+v", st)
	}
	d := diffs(t, p).Routes[0]
	if strings.Join(d.Noise, ",") != "$.generated_at,$.items[*].seen" {
		t.Errorf("learned noise %v", d.Noise)
	}
	text := proxy.FormatSample(d.Samples[0])
	if !strings.Contains(text, "$.id: 1 → 2") || strings.Contains(text, "generated_at") || strings.Contains(text, "server") {
		t.Errorf("sample:\n%s", text)
	}
}

// TestShadowLagRecheck: with shadow.recheck, a mismatch that is gone when
// both sides are asked again (a candidate lagging its sync) counts as
// settled; one that stays is a mismatch, sampled from the fresh answers.
func TestShadowLagRecheck(t *testing.T) {
	tests := []struct {
		name           string
		path           string
		recheck        time.Duration
		wantSettled    int64
		wantMismatches int64
		wantCandCalls  int
	}{
		{"lagging candidate settles", "/api/orders/lag", 50 * time.Millisecond, 1, 0, 2},
		{"wrong candidate stays a mismatch", "/api/orders/wrong", 50 * time.Millisecond, 0, 1, 2},
		{"without recheck the lag is a mismatch", "/api/orders/lag", 0, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"id":1,"reserved":5}` })
			var calls atomic.Int64
			cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string {
				// The lagging candidate has the old level on its first
				// answer only; the wrong one always has another id.
				if calls.Add(1) == 1 && strings.HasSuffix(r.URL.Path, "/lag") {
					return `{"id":1,"reserved":4}`
				}
				if strings.HasSuffix(r.URL.Path, "/wrong") {
					return `{"id":2,"reserved":5}`
				}
				return `{"id":1,"reserved":5}`
			})
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, ""),
				Tune: func(c *proxy.Config) { c.Shadow.Recheck = tt.recheck }})
			getBody(t, p.URL+tt.path)
			st := waitCompared(t, p, 1)
			if st.Settled != tt.wantSettled || st.Mismatches != tt.wantMismatches || st.Compared != 1 {
				t.Fatalf("stats %+v, want %d settled, %d mismatches", st, tt.wantSettled, tt.wantMismatches)
			}
			if got := len(cand.headers()); got != tt.wantCandCalls {
				t.Errorf("the candidate was asked %d times, want %d", got, tt.wantCandCalls)
			}
			if m := metric(t, p, "strangler_proxy_shadow_comparisons_total", `route="orders"`, `result="settled"`); m != float64(tt.wantSettled) {
				t.Errorf("settled metric %v", m)
			}
			if tt.wantMismatches > 0 {
				text := proxy.FormatSample(diffs(t, p).Routes[0].Samples[0])
				if !strings.Contains(text, "$.") {
					t.Errorf("sample:\n%s", text)
				}
			}
		})
	}
}

// TestShadowWrites: writes are not shadowed unless the module says so, and
// then the copy is marked dry-run.
func TestShadowWrites(t *testing.T) {
	for _, writes := range []bool{false, true} {
		t.Run(fmt.Sprintf("writes=%v", writes), func(t *testing.T) {
			legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"ok":true}` })
			cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return `{"ok":true}` })
			opts := ""
			if writes {
				opts = "    shadow: {writes: true}"
			}
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, opts)})
			resp, err := http.Post(p.URL+"/api/orders", "application/json", strings.NewReader(`{"sku":"a"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			getBody(t, p.URL+"/api/orders/1") // a GET, always shadowed, to know the queue moved
			st := waitCompared(t, p, map[bool]int64{false: 1, true: 2}[writes])
			var posts []http.Header
			cand.mu.Lock()
			for i, r := range cand.reqs {
				if r.Method == http.MethodPost {
					posts = append(posts, cand.hdrs[i])
				}
			}
			cand.mu.Unlock()
			if !writes && len(posts) != 0 {
				t.Fatalf("a write was shadowed: %+v", st)
			}
			if writes && (len(posts) != 1 || posts[0].Get("X-Strangler-Shadow") != "dry-run") {
				t.Fatalf("want one dry-run POST copy, got %v", posts)
			}
			if legacy.Hits() != 2 {
				t.Fatalf("legacy saw %d requests; a write must never reach it twice", legacy.Hits())
			}
		})
	}
}

// TestShadowBoundedQueue: with the workers stalled, copies beyond the
// queue's size are dropped and counted while the clients are served.
func TestShadowBoundedQueue(t *testing.T) {
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"ok":true}` })
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return `{"ok":true}` })
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, ""), Tune: func(c *proxy.Config) {
		c.Shadow.Queue = 4
		c.Shadow.Workers = 1
	}})
	resume := p.PauseShadow()
	const n = 30
	for i := range n {
		code, _ := getBody(t, fmt.Sprintf("%s/api/orders/%d", p.URL, i))
		if code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	// One copy may be in the worker's hands, waiting on the pause.
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_shadow_dropped_total", `reason="queue_full"`) >= n-5
	}, "copies beyond the queue were not dropped")
	if q := p.ShadowQueueLen(); q != 4 {
		t.Errorf("queue holds %d, want 4", q)
	}
	resume()
	st := waitCompared(t, p, 4)
	if st.Compared > 5 || st.Dropped < n-5 {
		t.Errorf("stats %+v", st)
	}
}

// TestShadowBodyCap does not shadow an exchange whose answer is over the
// cap, and still serves it whole.
func TestShadowBodyCap(t *testing.T) {
	big := `{"blob":"` + strings.Repeat("b", 4096) + `"}`
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return big })
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return big })
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, ""), Tune: func(c *proxy.Config) {
		c.Shadow.MaxBodyBytes = 1024
	}})
	code, body := getBody(t, p.URL+"/api/orders/1")
	if code != 200 || body != big {
		t.Fatalf("client got %d and %d bytes", code, len(body))
	}
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_shadow_dropped_total", `reason="body_too_large"`) == 1
	}, "the oversized exchange was not counted")
	if cand.Hits() != 0 {
		t.Fatal("the oversized exchange was shadowed")
	}
}

// TestShadowDiffsJSON checks the diffs endpoint's shape, which the CLI and
// the migration status read.
func TestShadowDiffsJSON(t *testing.T) {
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"a":1}` })
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return `{"a":2}` })
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, "")})
	getBody(t, p.URL+"/api/orders/1")
	waitCompared(t, p, 1)
	req, _ := http.NewRequest(http.MethodGet, p.AdminURL+"/v1/modules/orders/diffs", nil)
	req.Header.Set("Authorization", "Bearer "+proxytest.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	routes := raw["routes"].([]any)
	sample := routes[0].(map[string]any)["samples"].([]any)[0].(map[string]any)
	d := sample["differences"].([]any)[0].(map[string]any)
	if d["path"] != "$.a" || d["legacy"] != "1" || d["candidate"] != "2" {
		t.Fatalf("difference %v", d)
	}
}

// TestShadowRateCap sends at most max_per_second copies and counts the
// rest as rate-limited, while every client is served.
func TestShadowRateCap(t *testing.T) {
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"ok":true}` })
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return `{"ok":true}` })
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, ""), Tune: func(c *proxy.Config) {
		c.Shadow.MaxPerSecond = 5
	}})
	const n = 40
	start := time.Now()
	for i := range n {
		if code, _ := getBody(t, fmt.Sprintf("%s/api/orders/%d", p.URL, i)); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	seconds := int(time.Since(start)/time.Second) + 2 // windows the requests may span
	limited := metric(t, p, "strangler_proxy_shadow_dropped_total", `reason="rate_limited"`)
	sent := n - int(limited)
	if sent > 5*seconds || limited == 0 {
		t.Fatalf("%d copies sent in %d windows of 5, %v rate-limited", sent, seconds, limited)
	}
	waitCompared(t, p, int64(sent))
}
