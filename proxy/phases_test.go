package proxy_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestPhases: the admin API holds each module's extraction phase, refuses
// bad input with a problem and changes nothing, records acknowledgements
// and verify results, audits phase changes, and keeps it all across a
// restart.
func TestPhases(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	p := proxytest.Start(t, proxytest.Config{Dir: dir})
	c := p.Admin(t)

	st, err := c.Phase(ctx, "inventory")
	if err != nil || st.Phase != 0 || st.Name != "legacy" {
		t.Fatalf("unset phase: %+v %v", st, err)
	}
	if _, err := c.SetPhase(ctx, "inventory", 3, 25); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"phase too high", "/v1/phases/inventory", `{"phase":6}`, 422},
		{"negative weight", "/v1/phases/inventory", `{"phase":3,"weight":-1}`, 422},
		{"malformed", "/v1/phases/inventory", `{"phase":`, 400},
		{"wrong type", "/v1/phases/inventory", `{"phase":"three"}`, 400},
		{"bad module name", "/v1/phases/In%20ventory", `{"phase":1}`, 400},
		{"ack of no phase", "/v1/phases/inventory/acks/monolith", `{"phase":9}`, 422},
		{"verify without check", "/v1/phases/inventory/verify", `{"drift":false}`, 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := adminDo(t, http.MethodPut, p.AdminURL+tc.path, proxytest.Token, tc.body)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" || body["title"] == nil {
				t.Fatalf("%d %v, want a %d problem", resp.StatusCode, body, tc.status)
			}
		})
	}
	if _, err := c.Ack(ctx, "inventory", "inventory-service", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordVerify(ctx, "inventory", api.VerifyResult{Check: "inventory", Summary: "0 differences in 150 rows"}); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)

	p2 := proxytest.Start(t, proxytest.Config{Dir: dir})
	c2 := p2.Admin(t)
	st, err = c2.Phase(ctx, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != 3 || st.Name != "canary" || st.Weight != 25 || st.By != "tester@test (admin-token)" || st.Acks["inventory-service"] != 3 ||
		st.Verify == nil || st.Verify.Summary != "0 differences in 150 rows" || st.Verify.Drift {
		t.Fatalf("after restart: %+v", st)
	}
	all, err := c2.Phases(ctx)
	if err != nil || len(all) != 1 || all[0].Module != "inventory" {
		t.Fatalf("list: %+v %v", all, err)
	}
	audit, err := c2.Audit(ctx, "inventory", 10)
	if err != nil || len(audit) != 1 || audit[0].Action != "phase" || string(audit[0].After) != `{"phase":"canary","weight":25}` {
		t.Fatalf("audit: %+v %v", audit, err)
	}
}

// TestWatchPhase: a component watching a module applies each new phase
// once and acknowledges it; a failed apply is retried and not
// acknowledged.
func TestWatchPhase(t *testing.T) {
	p := proxytest.Start(t, proxytest.Config{})
	c := p.Admin(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var applied atomic.Int64
	var calls, failOnce atomic.Int32
	failOnce.Store(1)
	applied.Store(-1)
	done := make(chan error, 1)
	go func() {
		done <- c.WatchPhase(ctx, "inventory", "inventory-service", 20*time.Millisecond, slog.New(slog.DiscardHandler), func(_ context.Context, ph int) error {
			calls.Add(1)
			if ph == 4 && failOnce.CompareAndSwap(1, 0) {
				return errors.New("not yet")
			}
			applied.Store(int64(ph))
			return nil
		})
	}()
	acked := func(ph int) func() bool {
		return func() bool {
			st, err := c.Phase(context.Background(), "inventory")
			return err == nil && st.Acks["inventory-service"] == ph && applied.Load() == int64(ph)
		}
	}
	proxytest.Eventually(t, 5*time.Second, acked(0), "phase 0 not acknowledged")
	if _, err := c.SetPhase(context.Background(), "inventory", 4, 0); err != nil {
		t.Fatal(err)
	}
	proxytest.Eventually(t, 5*time.Second, acked(4), "phase 4 not acknowledged")
	before := calls.Load()
	time.Sleep(100 * time.Millisecond)
	if calls.Load() != before {
		t.Fatalf("apply called again without a change: %d then %d", before, calls.Load())
	}
	if before != 3 {
		t.Fatalf("apply called %d times, want 3 (0, failed 4, 4)", before)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
