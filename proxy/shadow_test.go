package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// shadowTable puts module orders in shadow mode towards candidate.
func shadowTable(candidate, shadowOpts string) string {
	return shadowModules(shadowModule{"orders", candidate, shadowOpts})
}

// shadowModule is a module in shadow mode: its routes are /api/<name>,
// its candidate <name>-svc at url, with opts as more module settings.
type shadowModule struct{ name, url, opts string }

// shadowModules builds a table of a default route to legacy and mods.
func shadowModules(mods ...shadowModule) string {
	var backends, modules strings.Builder
	for _, m := range mods {
		fmt.Fprintf(&backends, "  %s-svc: {urls: [%q]}\n", m.name, m.url)
		fmt.Fprintf(&modules, "  - name: %[1]s\n    candidate: %[1]s-svc\n    mode: shadow\n%[2]s\n    routes: [{id: %[1]s, prefix: /api/%[1]s}]\n", m.name, m.opts)
	}
	return "\nbackends:\n" + backends.String() + "modules:\n  - name: default\n    routes: [{id: default, prefix: /}]\n" + modules.String()
}

// jsonBackend answers every request with body(r), recording requests.
type jsonBackend struct {
	*proxytest.Backend
	mu   sync.Mutex
	reqs []*http.Request
	hdrs []http.Header
}

func newJSONBackend(t *testing.T, name string, body func(r *http.Request) string) *jsonBackend {
	return newStatusBackend(t, name, func(r *http.Request) (int, string) { return http.StatusOK, body(r) })
}

// newStatusBackend is newJSONBackend with the status chosen per request.
func newStatusBackend(t *testing.T, name string, answer func(r *http.Request) (int, string)) *jsonBackend {
	jb := &jsonBackend{}
	jb.Backend = proxytest.HandlerBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jb.mu.Lock()
		jb.reqs = append(jb.reqs, r)
		jb.hdrs = append(jb.hdrs, r.Header.Clone())
		jb.mu.Unlock()
		status, body := answer(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
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
// settled; one that stays is a mismatch, sampled from the fresh answers;
// and one where legacy's own answer changed meanwhile (the resource was
// deleted, and both now say 404) proves nothing and counts as
// inconclusive.
func TestShadowLagRecheck(t *testing.T) {
	const (
		fresh   = `{"id":1,"reserved":5}`
		stale   = `{"id":1,"reserved":4}`
		wrong   = `{"id":2,"reserved":5}`
		missing = `{"title":"not found"}`
	)
	ok := func(body string) func(int64) (int, string) {
		return func(int64) (int, string) { return http.StatusOK, body }
	}
	// firstThen answers first on the first n calls and then on the rest.
	firstThen := func(n int64, first, then string, thenStatus int) func(int64) (int, string) {
		return func(call int64) (int, string) {
			if call <= n {
				return http.StatusOK, first
			}
			return thenStatus, then
		}
	}
	tests := []struct {
		name             string
		recheck          time.Duration
		legacy           func(call int64) (int, string)
		cand             func(call int64) (int, string)
		wantSettled      int64
		wantMismatches   int64
		wantInconclusive int64
		wantCandCalls    int
	}{
		{"lagging candidate settles", 50 * time.Millisecond, ok(fresh), firstThen(1, stale, fresh, 200), 1, 0, 0, 2},
		{"wrong candidate stays a mismatch", 50 * time.Millisecond, ok(fresh), ok(wrong), 0, 1, 0, 2},
		{"without recheck the lag is a mismatch", 0, ok(fresh), firstThen(1, stale, fresh, 200), 0, 1, 0, 1},
		// Legacy answers the client and the noise check, then the
		// resource is deleted: both say 404 on the recheck.
		{"deleted meanwhile is inconclusive", 50 * time.Millisecond, firstThen(2, fresh, missing, 404), firstThen(1, stale, missing, 404), 0, 0, 1, 2},
		{"legacy changed, candidate still differs, is inconclusive", 50 * time.Millisecond, firstThen(2, fresh, missing, 404), ok(stale), 0, 0, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var legacyCalls, candCalls atomic.Int64
			legacy := newStatusBackend(t, "legacy", func(r *http.Request) (int, string) { return tt.legacy(legacyCalls.Add(1)) })
			cand := newStatusBackend(t, "orders-svc", func(r *http.Request) (int, string) { return tt.cand(candCalls.Add(1)) })
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, ""),
				Tune: func(c *proxy.Config) { c.Shadow.Recheck = tt.recheck }})
			getBody(t, p.URL+"/api/orders/1")
			st := waitCompared(t, p, 1)
			if st.Settled != tt.wantSettled || st.Mismatches != tt.wantMismatches || st.Inconclusive != tt.wantInconclusive || st.Compared != 1 {
				t.Fatalf("stats %+v, want %d settled, %d mismatches, %d inconclusive", st, tt.wantSettled, tt.wantMismatches, tt.wantInconclusive)
			}
			if got := len(cand.headers()); got != tt.wantCandCalls {
				t.Errorf("the candidate was asked %d times, want %d", got, tt.wantCandCalls)
			}
			for result, want := range map[string]int64{"settled": tt.wantSettled, "inconclusive": tt.wantInconclusive} {
				if m := metric(t, p, "strangler_proxy_shadow_comparisons_total", `route="orders"`, `result="`+result+`"`); m != float64(want) {
					t.Errorf("%s metric %v, want %d", result, m, want)
				}
			}
			if tt.wantMismatches > 0 {
				text := proxy.FormatSample(diffs(t, p).Routes[0].Samples[0])
				if !strings.Contains(text, "$.") {
					t.Errorf("sample:\n%s", text)
				}
			}
			mod, err := p.Admin(t).Module(context.Background(), "orders")
			if err != nil {
				t.Fatal(err)
			}
			if mod.Shadow.Inconclusive != tt.wantInconclusive || mod.Shadow.Settled != tt.wantSettled {
				t.Errorf("module summary %+v", mod.Shadow)
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
		c.Shadow.CandidateQueue = 4
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
	// One copy may be in the worker's hands, waiting on the pause. A copy
	// is queued after its answer went out, so the last ones may still be
	// on their way when the drops are counted: wait for the queue too.
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_shadow_dropped_total", `reason="queue_full"`) >= n-5 && p.ShadowQueueLen() == 4
	}, "copies beyond the queue were not dropped, or the queue does not hold 4")
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

// hangingServer accepts connections and never answers, like a candidate
// stuck on a lock; it returns its address.
func hangingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c) //nolint:errcheck
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestChaosShadowHungCandidate: a candidate that accepts connections and
// never answers holds only its own share of the shadow queue and workers,
// so that another module's copies are still compared; and once its copies
// have timed out, its breaker opens and its copies are dropped at the door.
func TestChaosShadowHungCandidate(t *testing.T) {
	hung := hangingServer(t)
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"ok":true}` })
	healthy := newJSONBackend(t, "users-svc", func(r *http.Request) string { return `{"ok":true}` })
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowModules(shadowModule{"orders", "http://" + hung, ""}, shadowModule{"users", healthy.URL, ""}), Tune: func(c *proxy.Config) {
		c.Shadow.Queue = 64
		c.Shadow.Timeout = 500 * time.Millisecond
		c.Shadow.MaxPerSecond = -1
	}})
	stats := func(module string) api.ShadowStats {
		d, err := p.Admin(t).Diffs(context.Background(), module)
		if err != nil {
			t.Fatal(err)
		}
		return d.Routes[0].Stats
	}
	get := func(path string) {
		if code, _ := getBody(t, p.URL+path); code != 200 {
			t.Fatalf("%s: status %d", path, code)
		}
	}

	const n, every = 1500, 10
	sent := int64(0)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		get(fmt.Sprintf("/api/orders/%d", i))
		if i%every == 0 {
			get(fmt.Sprintf("/api/users/%d", i))
			sent++
		}
	}
	// Every healthy copy is compared or dropped; wait for the last ones.
	var st api.ShadowStats
	for wait := time.Now().Add(20 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if st = stats("users"); st.Compared+st.Errors+st.Dropped >= sent {
			break
		}
	}
	queueFull := metric(t, p, "strangler_proxy_shadow_dropped_total", `route="users"`, `reason="queue_full"`)
	hs := stats("orders")
	chaostest.Report(t, st.Compared > 0 && queueFull < float64(sent)/2,
		fmt.Sprintf("%d GETs to a module whose candidate hangs, with %d GETs to a healthy module among them", n, sent),
		"the healthy module's copies compared, not dropped as queue_full",
		fmt.Sprintf("healthy: %d compared, %d dropped (%v queue_full); hung: %d errors, %d dropped", st.Compared, st.Dropped, queueFull, hs.Errors, hs.Dropped))

	// The hung copies time out (five in a row open the default breaker);
	// then a copy is not even queued.
	for wait := time.Now().Add(20 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if hs = stats("orders"); hs.Errors >= 5 {
			break
		}
	}
	before := metric(t, p, "strangler_proxy_shadow_dropped_total", `route="orders"`, `reason="breaker_open"`)
	for i := range 20 {
		get(fmt.Sprintf("/api/orders/after-%d", i))
	}
	open := metric(t, p, "strangler_proxy_shadow_dropped_total", `route="orders"`, `reason="breaker_open"`) - before
	chaostest.Report(t, hs.Errors >= 5 && open > 0,
		"20 more GETs to the hung module once its copies had timed out",
		"copies dropped as breaker_open, without waiting on the candidate",
		fmt.Sprintf("%d timed out, then %v of 20 dropped as breaker_open", hs.Errors, open))
}

// TestShadowWriteOrder: with shadow.writes, the copies of one key (the
// sticky key, else the client) reach the candidate one at a time and in
// the order the client sent them, however many workers there are.
func TestShadowWriteOrder(t *testing.T) {
	tests := []struct {
		name    string
		opts    string
		clients int
	}{
		{"by sticky header", "    sticky: {header: X-User}\n    shadow: {writes: true}", 6},
		{"by client address", "    shadow: {writes: true}", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			last := map[string]int{}
			busy := map[string]bool{}
			var violations []string
			arrived := 0
			legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"ok":true}` })
			cand := proxytest.HandlerBackend(t, "orders-svc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				key := r.Header.Get("X-User")
				seq, _ := strconv.Atoi(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
				mu.Lock()
				arrived++
				if busy[key] {
					violations = append(violations, fmt.Sprintf("%s #%d arrived while another copy of its key was in flight", key, seq))
				}
				if l, ok := last[key]; ok && seq <= l {
					violations = append(violations, fmt.Sprintf("%s #%d arrived after #%d", key, seq, l))
				}
				busy[key], last[key] = true, seq
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // a slow candidate, so that copies queue up
				mu.Lock()
				busy[key] = false
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"ok":true}`)
			}))
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, tt.opts), Tune: func(c *proxy.Config) {
				c.Shadow.MaxPerSecond = -1
			}})
			const perClient = 40
			var wg sync.WaitGroup
			for c := range tt.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perClient {
						req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/orders/%d", p.URL, i), strings.NewReader(`{}`))
						if tt.clients > 1 {
							req.Header.Set("X-User", fmt.Sprintf("user-%d", c))
						}
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
			var st api.ShadowStats
			proxytest.Eventually(t, 30*time.Second, func() bool {
				st = diffs(t, p).Routes[0].Stats
				return st.Compared+st.Errors+st.Dropped >= int64(tt.clients*perClient)
			}, "write copies were not compared: %+v", st)
			mu.Lock()
			defer mu.Unlock()
			if len(violations) > 0 {
				t.Fatalf("%d of %d copies out of order (%+v), such as: %s", len(violations), arrived, st, strings.Join(violations[:min(5, len(violations))], "; "))
			}
			if arrived < tt.clients*perClient/2 {
				t.Fatalf("only %d of %d copies arrived: %+v", arrived, tt.clients*perClient, st)
			}
		})
	}
}

// TestShadowRecheckAfterShutdown: a recheck still waiting when the proxy
// stops is counted as the mismatch it is, and nothing of the shadow
// machinery runs after Run returns.
func TestShadowRecheckAfterShutdown(t *testing.T) {
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"id":1}` })
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return `{"id":2}` })
	const recheck = 500 * time.Millisecond
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, ""),
		Tune: func(c *proxy.Config) { c.Shadow.Recheck = recheck }})
	getBody(t, p.URL+"/api/orders/1")
	// The client's request and the noise check: the recheck is next.
	proxytest.Eventually(t, 10*time.Second, func() bool { return legacy.Hits() == 2 }, "legacy was not asked twice")
	// The count below is only worth its zero if it sees the workers now.
	if g := p.ShadowGoroutines(); g == 0 {
		t.Fatal("ShadowGoroutines sees no shadow goroutine of a running proxy")
	}
	p.Stop(t)
	if st := p.ShadowStats("orders"); st.Mismatches != 1 || st.Compared != 1 {
		t.Errorf("the pending recheck was lost at shutdown: %+v", st)
	}
	time.Sleep(3 * recheck) // past the recheck's time, so that a timer left behind fires
	if q := p.ShadowQueueLen(); q != 0 {
		t.Errorf("a recheck fired after Run returned: %d copies queued", q)
	}
	if g := p.ShadowGoroutines(); g != 0 {
		t.Errorf("%d shadow goroutines outlive Run", g)
	}
	if legacy.Hits() != 2 || cand.Hits() != 1 {
		t.Errorf("backends asked after Run returned: legacy %d, candidate %d", legacy.Hits(), cand.Hits())
	}
}

// TestShadowPrunesDeletedRoutes: the results and metric series of a route
// that leaves the table are dropped with it.
func TestShadowPrunesDeletedRoutes(t *testing.T) {
	legacy := newJSONBackend(t, "legacy", func(r *http.Request) string { return `{"ok":true}` })
	cand := newJSONBackend(t, "orders-svc", func(r *http.Request) string { return `{"ok":true}` })
	table := shadowTable(cand.URL, "")
	withOld := strings.Replace(table, "routes: [{id: orders, prefix: /api/orders}]",
		"routes: [{id: orders, prefix: /api/orders}, {id: orders-old, prefix: /api/old-orders}]", 1)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: withOld})
	getBody(t, p.URL+"/api/old-orders/1")
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_shadow_comparisons_total", `route="orders-old"`) == 1
	}, "the old route's copy was not compared")
	if got := strings.Join(p.ShadowRoutes(), ","); got != "default,orders,orders-old" {
		t.Fatalf("shadow routes %s", got)
	}
	p.WriteRoutes(t, table)
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return strings.Join(p.ShadowRoutes(), ",") == "default,orders"
	}, "the deleted route's results are kept: %v", p.ShadowRoutes())
	for _, name := range []string{"strangler_proxy_shadow_comparisons_total", "strangler_proxy_shadow_dropped_total"} {
		if series := metricLines(t, p, name, `route="orders-old"`); len(series) > 0 {
			t.Errorf("series of the deleted route remain: %v", series)
		}
	}
}

// TestShadowRedaction: mismatch samples, as the admin API serves them,
// hide credentials, tokens, JWT-shaped strings, e-mail addresses and the
// configured JSON paths and headers; with redaction disabled they show
// what the backends answered.
func TestShadowRedaction(t *testing.T) {
	const (
		clientJWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjbGllbnQifQ.c2lnLWNsaWVudA"
		jwtA      = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnLWE"
		jwtB      = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnLWI"
	)
	legacyBody := `{"id":1,"user":{"email":"alice@example.com","name":"Alice"},"session":"` + jwtA + `","phone":"555-0100","bio":"mail carol@example.org"}`
	candBody := `{"id":1,"user":{"email":"bob@example.com","name":"Bob"},"session":"` + jwtB + `","phone":"555-0199","bio":"mail dave@example.org","extra":{"password":"hunter2"}}`
	answer := func(body, cookie, internal string) *jsonBackend {
		jb := &jsonBackend{}
		jb.Backend = proxytest.HandlerBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Set-Cookie", cookie)
			w.Header().Set("X-Internal", internal)
			fmt.Fprint(w, body)
		}))
		return jb
	}
	// The secrets every default leaves out, and the values it keeps.
	secrets := []string{clientJWT, jwtA, jwtB, "alice@example.com", "bob@example.com", "carol@example.org", "dave@example.org", "hunter2", "sid-legacy", "sid-cand"}
	shown := []string{`\"Alice\"`, `\"Bob\"`, "page=2", "$.user.email", "$.extra"}
	tests := []struct {
		name   string
		redact proxy.ShadowRedact
		hidden []string
		shown  []string
	}{
		{"defaults", proxy.ShadowRedact{}, secrets, append(shown, "555-0100", "internal-legacy")},
		{"configured paths and headers", proxy.ShadowRedact{Paths: []string{"$..phone"}, Headers: []string{"X-Internal"}},
			append(secrets, "555-0100", "555-0199", "internal-legacy"), shown},
		{"disabled", proxy.ShadowRedact{Disabled: true}, nil, append(shown, clientJWT, jwtA, "alice@example.com", "hunter2", "sid-legacy", "555-0100")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			legacy := answer(legacyBody, "sid=sid-legacy", "internal-legacy")
			cand := answer(candBody, "sid=sid-cand", "internal-cand")
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL,
				Routes: shadowTable(cand.URL, "    shadow: {compare_headers: [Content-Type, Set-Cookie, X-Internal]}"),
				Tune:   func(c *proxy.Config) { c.Shadow.Redact = tt.redact }})
			req, _ := http.NewRequest(http.MethodGet, p.URL+"/api/orders/1?access_token="+clientJWT+"&page=2", nil)
			req.Header.Set("Authorization", "Bearer "+clientJWT)
			req.Header.Set("X-Request-Id", clientJWT+"-id")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			waitCompared(t, p, 1)
			req, _ = http.NewRequest(http.MethodGet, p.AdminURL+"/v1/modules/orders/diffs", nil)
			req.Header.Set("Authorization", "Bearer "+proxytest.Token)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			served := string(raw)
			if !strings.Contains(served, `"samples":[{`) {
				t.Fatalf("no sample: %s", served)
			}
			for want, list := range map[bool][]string{false: tt.hidden, true: tt.shown} {
				for _, s := range list {
					if strings.Contains(served, s) != want {
						t.Errorf("the admin API shows %q: %v, want %v\n%s", s, !want, want, served)
					}
				}
			}
		})
	}
}
