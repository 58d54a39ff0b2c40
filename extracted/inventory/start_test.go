package inventory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit/servicekittest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/saga"
)

// startingRequest is a request to a service that is still starting, and
// the status it gets once the service has started.
type startingRequest struct {
	name, method, path, key, body string
	started                       int
}

// send sends req to base and returns the answer's status, headers and
// body.
func (r startingRequest) send(t *testing.T, base string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.path, bytes.NewBufferString(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.key != "" {
		req.Header.Set(saga.HeaderIdempotencyKey, r.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// expectStarting checks that req to base gets the retryable 503 not-ready
// problem with Retry-After of a service that has not loaded its ownership.
func (r startingRequest) expectStarting(t *testing.T, base string) {
	t.Helper()
	status, h, body := r.send(t, base)
	var p httpx.Problem
	_ = json.Unmarshal(body, &p)
	if status != http.StatusServiceUnavailable || p.Type != httpx.ProblemTypeBase+"not-ready" {
		t.Errorf("%s: %d %s, want 503 not-ready", r.name, status, body)
	}
	if ct, ra := h.Get("Content-Type"), h.Get("Retry-After"); ct != httpx.ContentTypeProblem || ra == "" {
		t.Errorf("%s: Content-Type %q, Retry-After %q: want a problem with Retry-After", r.name, ct, ra)
	}
}

// startingRequests are a saga's reservation and release, a write of the
// legacy contract, reads of both APIs and the ownership API, on the SKU
// TEA-SEN-100 (product 7) with 10 units in nl-ams.
var startingRequests = []startingRequest{
	{"saga reservation", http.MethodPost, "/v1/items/TEA-SEN-100/reservations", "order-1/reserve-stock/1", `{"quantity":3,"reference":"order/1"}`, http.StatusOK},
	{"saga release", http.MethodPost, "/v1/items/TEA-SEN-100/releases", "order-1/reserve-stock/1", `{}`, http.StatusOK},
	{"legacy reservation", http.MethodPost, "/api/inventory/stock/P-000007/reservations", "", `{"quantity":1,"reference":"order/2"}`, http.StatusOK},
	{"read", http.MethodGet, "/v1/items/TEA-SEN-100", "", "", http.StatusOK},
	{"legacy read", http.MethodGet, "/api/inventory/stock/P-000007", "", "", http.StatusOK},
	{"ownership", http.MethodGet, "/v1/ownership", "", "", http.StatusOK},
}

// TestStartBeforeOwnershipLoads restarts a service that owns the inventory
// and holds its start-up, listening, between the migrations and the load
// of its persisted ownership (BeforeLoad): a saga's reservation or release,
// any other write and the reads get a retryable 503 not-ready with
// Retry-After, never the 409 not-owner that a saga takes as final, and
// /readyz is 503; once the ownership is loaded the same requests go
// through.
func TestStartBeforeOwnershipLoads(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		first := newService(t, dsn)
		learnProduct(t, first, 7, "TEA-SEN-100")
		if err := first.SetOwner(ctx, true); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(first.Handler())
		if st, _, b := (startingRequest{method: http.MethodPost, path: "/v1/items/TEA-SEN-100/adjustments", body: `{"warehouse":"nl-ams","delta":10}`}).send(t, srv.URL); st != http.StatusOK {
			t.Fatalf("adjust: %d %s", st, b)
		}
		srv.Close()
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}

		hold := servicekittest.NewHold()
		svc := newUnprepared(t, dsn, func(_ *inventory.Config, o *inventory.Options) { o.BeforeLoad = hold.BeforeLoad })
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("inventory service: %v", err)
			}
		})
		select {
		case <-hold.Holding():
		case err := <-done:
			t.Fatalf("the service ended before it loaded its ownership: %v", err)
		}
		base := "http://" + svc.Addr()
		for _, r := range startingRequests {
			r.expectStarting(t, base)
		}
		for path, want := range map[string]int{"/readyz": http.StatusServiceUnavailable, "/healthz": http.StatusOK} {
			if st, _, b := (startingRequest{method: http.MethodGet, path: path}).send(t, base); st != want {
				t.Errorf("%s while starting: %d %s, want %d", path, st, b, want)
			}
		}
		hold.Open()
		<-svc.Ready()
		for _, r := range startingRequests {
			if st, _, b := r.send(t, base); st != r.started {
				t.Errorf("%s once started: %d %s, want %d", r.name, st, b, r.started)
			}
		}
	})
}

// TestStartBeforeMigrations serves a service whose database is not
// migrated yet, as Run does before Prepare on a first start: reads and
// writes get the retryable 503, not a 500 for the missing tables.
func TestStartBeforeMigrations(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		srv := httptest.NewServer(newUnprepared(t, dsn).Handler())
		t.Cleanup(srv.Close)
		for _, r := range startingRequests {
			r.expectStarting(t, srv.URL)
		}
	})
}
