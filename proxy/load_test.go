package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestFlipUnderLoad flips a module legacy → canary 50 → extracted →
// rollback while clients keep sending reads, slow reads and writes: no
// request may fail, and both sides must have served.
func TestFlipUnderLoad(t *testing.T) {
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/slow") {
				time.Sleep(150 * time.Millisecond)
			}
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"backend":%q,"len":%d}`, name, len(body))
		})
	}
	legacy := proxytest.HandlerBackend(t, "legacy", handler("legacy"))
	svc := proxytest.HandlerBackend(t, "orders-svc", handler("orders-svc"))
	table := strings.Replace(extractedTable(svc.URL, ""), "mode: extracted", "mode: legacy", 1)
	table = strings.Replace(table, "candidate: orders-svc", "candidate: orders-svc\n    sticky: {header: X-User-Id}", 1)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: table})
	c := p.Admin(t)
	ctx := context.Background()

	var total, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var req *http.Request
				switch i % 5 {
				case 0:
					req, _ = http.NewRequest(http.MethodPost, p.URL+"/api/orders", strings.NewReader(`{"sku":"a"}`))
				case 1:
					req, _ = http.NewRequest(http.MethodGet, p.URL+"/api/orders/slow", nil)
				default:
					req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", p.URL, i), nil)
				}
				req.Header.Set("X-User-Id", fmt.Sprintf("user-%d-%d", w, i%50))
				total.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"backend"`) {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					mu.Unlock()
				}
			}
		}()
	}
	pause := func() { time.Sleep(400 * time.Millisecond) }
	pause()
	steps := []func() error{
		func() error { _, err := c.Canary(ctx, "orders", 50); return err },
		func() error { _, err := c.Flip(ctx, "orders"); return err },
		func() error { _, err := c.Rollback(ctx, "orders"); return err },
		func() error { _, err := c.Canary(ctx, "orders", 50); return err },
		func() error { _, err := c.Rollback(ctx, "orders"); return err },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Errorf("step %d: %v", i, err)
		}
		pause()
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed; legacy served %d, the candidate %d", total.Load(), failed.Load(), legacy.Hits(), svc.Hits())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed: %v", failed.Load(), total.Load(), failures[:min(5, len(failures))])
	}
	if legacy.Hits() == 0 || svc.Hits() == 0 || total.Load() < 100 {
		t.Fatalf("not enough traffic on both sides: %d requests, legacy %d, candidate %d", total.Load(), legacy.Hits(), svc.Hits())
	}
}

// TestCanaryStickyThroughProxy checks that users stay on their side
// through the proxy and that the split follows the weight.
func TestCanaryStickyThroughProxy(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	table := strings.Replace(extractedTable(svc.URL, ""), "mode: extracted", "mode: canary\n    weight: 30\n    sticky: {cookie: session}", 1)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: table})
	const users = 400
	side := map[string]string{}
	onCandidate := 0
	for round := range 2 {
		for u := range users {
			key := fmt.Sprintf("s-%d", u)
			_, e := proxytest.Get(t, p.URL+"/api/orders/1", map[string]string{"Cookie": "session=" + key})
			if round == 0 {
				side[key] = e.Backend
				if e.Backend == "orders-svc" {
					onCandidate++
				}
			} else if side[key] != e.Backend {
				t.Fatalf("user %s moved from %s to %s", key, side[key], e.Backend)
			}
		}
	}
	// 400 users at 30%: 120 expected; 4 standard deviations is ±37.
	if onCandidate < 83 || onCandidate > 157 {
		t.Fatalf("%d of %d users on the candidate at weight 30", onCandidate, users)
	}
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(p.Access.String(), `"decision":"canary_candidate"`) && strings.Contains(p.Access.String(), `"decision":"canary_legacy"`)
	}, "access log lacks canary decisions")
}
