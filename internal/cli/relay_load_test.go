package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/config"
	// The shop plugs in its monolith, as cmd/strangler does.
	_ "github.com/stranglerkit/strangler/extracted/shop"
	"github.com/stranglerkit/strangler/internal/cli"
)

// TestUpRelayUnderLoad runs the broker, the monolith and the relay as `up`
// builds them, on SQLite, where the relay opens its own pool on the
// monolith's file, and places a few hundred orders a second through the
// shop's HTTP API while the relay publishes and deletes published rows
// every 50 ms. The relay's writes (its position, lease and cleanup) do not
// go through the monolith's in-process write queue; they wait for SQLite's
// lock in its busy handler, as the monolith's writes wait for theirs. No
// request may fail and the relay may report no error.
func TestUpRelayUnderLoad(t *testing.T) {
	dir := cli.Isolate(t)
	t.Setenv("STRANGLER_BROKER_ADDR", "127.0.0.1:0")
	t.Setenv("STRANGLER_RELAY_METRICS_ADDR", "127.0.0.1:0")
	t.Setenv("STRANGLER_MONOLITH_ADDR", "127.0.0.1:0")
	t.Setenv("STRANGLER_MONOLITH_SEED", "false")
	cfg, err := config.Load(config.LoadOptions{})
	changefeedtest.Must(t, err)
	cfg.Relay.CleanupInterval = 50 * time.Millisecond
	cfg.Relay.Retention = time.Millisecond
	comps := cli.ServeParts(t, cfg, "broker", "monolith", "relay")
	monolithURL := comps[1].Addr()

	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, path string, body any) (int, []byte, error) {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		req, err := http.NewRequest(method, monolithURL+path, bytes.NewReader(b))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return resp.StatusCode, data, err
	}
	must := func(want int, method, path string, body any) []byte {
		t.Helper()
		status, data, err := call(method, path, body)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %s %v, want %d", method, path, status, data, err, want)
		}
		return data
	}
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		resp, err := client.Get(monolithURL + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("monolith not ready: %d", resp.StatusCode)
	})
	skus := []string{"LOAD-1", "LOAD-2", "LOAD-3", "LOAD-4"}
	for _, sku := range skus {
		var p struct {
			Ref string `json:"product_ref"`
		}
		changefeedtest.Must(t, json.Unmarshal(must(http.StatusCreated, http.MethodPost, "/api/catalog/products",
			map[string]any{"sku": sku, "name": sku, "price_cents": 100, "currency": "EUR"}), &p))
		must(http.StatusOK, http.MethodPost, "/api/inventory/stock/"+p.Ref+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": 100000, "reason": "load"})
	}
	var custs []int64
	for i := range 3 {
		var c struct{ ID int64 }
		changefeedtest.Must(t, json.Unmarshal(must(http.StatusCreated, http.MethodPost, "/api/customers",
			map[string]any{"email": fmt.Sprintf("load%d@example.com", i), "name": "Load",
				"address": map[string]any{"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"}}), &c))
		custs = append(custs, c.ID)
	}

	// Eight clients, each placing an order every 20 ms (400 a second in
	// all, if the shop keeps up) for three seconds.
	const clients, every, span = 8, 20 * time.Millisecond, 3 * time.Second
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		failures []string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for n := 0; time.Since(start) < span; n++ {
				<-tick.C
				status, body, err := call(http.MethodPost, "/api/orders", map[string]any{
					"customer_id": custs[(w+n)%len(custs)],
					"lines":       []map[string]any{{"sku": skus[(w+n)%len(skus)], "quantity": 1}},
				})
				mu.Lock()
				statuses[status]++
				if err != nil || status != http.StatusCreated {
					failures = append(failures, fmt.Sprintf("%d %s %v", status, body, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	placed := statuses[http.StatusCreated]
	rate := float64(placed) / elapsed.Seconds()
	t.Logf("%d orders in %s: %.0f/s; statuses %v", placed, elapsed.Round(time.Millisecond), rate, statuses)
	if len(failures) > 0 {
		t.Fatalf("%d of %d orders failed, first: %s", len(failures), placed+len(failures), failures[0])
	}
	// The floor is low so that a loaded CI machine does not fail the test;
	// the rate reached is logged.
	if rate < 100 {
		t.Errorf("placed %.0f orders a second, want a few hundred", rate)
	}

	// Every event is published (two per order, plus the fixtures'), and the
	// relay deleted published rows while the orders came in.
	gdb := changefeedtest.Open(t, "sqlite:"+filepath.Join(dir, "monolith.db"))
	want := int64(2*placed + 2*len(skus) + len(custs))
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		var published int64
		changefeedtest.Must(t, gdb.Raw("SELECT COALESCE(MAX(published), 0) FROM outbox_relay").Scan(&published).Error)
		return published == want, fmt.Sprintf("relay published %d of %d events", published, want)
	})
	resp, err := client.Get(comps[2].Addr())
	changefeedtest.Must(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	changefeedtest.Must(t, err)
	cleaned := metricValues(string(body), "changefeed_outbox_cleaned_total")
	if len(cleaned) == 0 || cleaned[0] == 0 {
		t.Errorf("the relay deleted no published row during the load: %v", cleaned)
	}
	for _, v := range metricValues(string(body), "changefeed_relay_errors_total") {
		if v != 0 {
			t.Errorf("relay errors during the load:\n%s", regexp.MustCompile(`(?m)^changefeed_relay_errors_total.*$`).FindAllString(string(body), -1))
		}
	}
}

// metricValues returns the values of every series of a family in a
// Prometheus text exposition.
func metricValues(text, name string) []float64 {
	var out []float64
	for _, m := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? (\S+)$`).FindAllStringSubmatch(text, -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}
