package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParticipantsReuseConnections has as many sagas call a participant
// at once as the orchestrator runs by default, round after round, and
// counts the connections the participant accepted: the first round's,
// kept idle and reused by the later rounds, not one per call. Before a
// round starts, every connection of the last one is back in the client's
// pool (httptrace's PutIdleConn), which the transport does just after a
// call has returned, so that no call of the next round dials for want of
// one. The first round may open one more than it runs at once (a call
// that got a returned connection while its own dial was under way leaves
// that one idle too), or fewer; the later rounds add connections only up
// to the round's size.
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
	var idle atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{PutIdleConn: func(err error) {
		if err == nil {
			idle.Add(1)
		}
	}})
	var first int64
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, concurrent)
		for i := range concurrent {
			wg.Go(func() {
				if _, err := inv.Reserve(ctx, fmt.Sprintf("order-%d-%d/reserve-stock/1", round, i), "A", 1, "order/1"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// A connection the pool does not keep (the default client keeps
		// two per host) never comes back, and the wait fails.
		want := int64(concurrent * (round + 1))
		for deadline := time.Now().Add(10 * time.Second); idle.Load() < want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d connections came back to the pool", round+1, idle.Load(), want)
			}
		}
		if round == 0 {
			first = conns.Load()
		}
	}
	if n, limit := conns.Load(), max(first, concurrent); n > limit {
		t.Errorf("%d rounds of %d concurrent calls opened %d connections, the first round %d: want at most %d", rounds, concurrent, n, first, limit)
	}
}
