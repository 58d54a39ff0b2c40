package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParticipantsReuseConnections has as many sagas call a participant
// at once as the orchestrator runs by default, round after round, and
// counts the connections the participant accepted: the first round's,
// kept idle and reused by the later rounds, not one per call.
func TestParticipantsReuseConnections(t *testing.T) {
	const concurrent, rounds = 16, 3
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sku":"A","warehouse":"nl-ams","on_hand":10,"reserved":1}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	inv, err := NewInventory(srv.URL, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, concurrent)
		for i := range concurrent {
			wg.Go(func() {
				if _, err := inv.Reserve(context.Background(), fmt.Sprintf("order-%d-%d/reserve-stock/1", round, i), "A", 1, "order/1"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// A connection returned to the pool just after the next round's call
	// began dialling can add one on a busy machine; the default client's
	// two idle connections per host opened about two per call (36).
	if limit := concurrent + concurrent/2; conns.Load() > int64(limit) {
		t.Errorf("%d rounds of %d concurrent calls opened %d connections, want at most %d", rounds, concurrent, conns.Load(), limit)
	}
}
