package inventory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/inventory"
)

// ownerToken is the admin token the tests' services are configured with.
const ownerToken = "test-admin-token-0123456789abcdef"

// TestOwnV1API drives the service's own API: ownership (behind the admin
// token), writes refused by a read replica, optimistic concurrency, and a
// reservation that is idempotent by its reference.
func TestOwnV1API(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		svc := newService(t, dsn, func(c *inventory.Config, _ *inventory.Options) { c.RegisterWith.Token = ownerToken })
		learnProduct(t, svc, 7, "TEA-SEN-100")
		srv := httptest.NewServer(svc.Handler())
		t.Cleanup(srv.Close)
		call := func(method, path, body, token string, want int) map[string]any {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != want {
				t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, out, want)
			}
			return out
		}
		steps := []struct {
			method, path, body string
			status             int
			check              func(map[string]any) bool
			token              string
		}{
			{"GET", "/v1/ownership", "", 200, func(m map[string]any) bool { return m["owner"] == false }, ""},
			{"POST", "/v1/items/TEA-SEN-100/adjustments", `{"warehouse":"nl-ams","delta":5}`, 409, func(m map[string]any) bool { return m["type"] != nil }, ""},
			{"POST", "/api/inventory/stock/P-000007/adjustments", `{"warehouse":"AMS1","delta":5}`, 409, nil, ""},
			{"PUT", "/v1/ownership", `{"owner":true}`, 401, func(m map[string]any) bool { return m["status"] == 401.0 }, ""},
			{"PUT", "/v1/ownership", `{"owner":true}`, 401, nil, "not-the-admin-token-0123456789"},
			{"GET", "/v1/ownership", "", 200, func(m map[string]any) bool { return m["owner"] == false }, ""},
			{"PUT", "/v1/ownership", `{}`, 422, nil, ownerToken},
			{"PUT", "/v1/ownership", `{"owner":true}`, 200, func(m map[string]any) bool { return m["owner"] == true }, ownerToken},
			{"POST", "/v1/items/tea-sen-100/adjustments", `{"warehouse":"nl-ams","delta":5,"expected_version":0}`, 200, func(m map[string]any) bool { return m["version"] == 1.0 }, ""},
			{"POST", "/v1/items/TEA-SEN-100/adjustments", `{"warehouse":"nl-ams","delta":5,"expected_version":0}`, 409, nil, ""},
			{"POST", "/v1/items/TEA-SEN-100/adjustments", `{"warehouse":"nl-ams","delta":-1,"expected_version":7}`, 409, nil, ""},
			{"POST", "/v1/items/TEA-SEN-100/adjustments", `{"warehouse":"nl-ams","delta":5,"expected_version":1}`, 200, func(m map[string]any) bool { return m["on_hand"] == 10.0 }, ""},
			{"POST", "/v1/items/NOPE-1/adjustments", `{"warehouse":"nl-ams","delta":5}`, 422, nil, ""},
			{"POST", "/v1/items/TEA-SEN-100/reservations", `{"quantity":4,"reference":"order/1"}`, 200, func(m map[string]any) bool { return m["reserved"] == 4.0 }, ""},
			// The same reservation again, as a client retrying after a
			// timeout would send it: no second reservation.
			{"POST", "/v1/items/TEA-SEN-100/reservations", `{"quantity":4,"reference":"order/1"}`, 200, func(m map[string]any) bool { return m["reserved"] == 4.0 }, ""},
			{"POST", "/api/inventory/stock/P-000007/reservations", `{"quantity":4,"reference":"order/1"}`, 200, func(m map[string]any) bool { return m["reserved"] == 4.0 }, ""},
			{"POST", "/v1/items/TEA-SEN-100/reservations", `{"quantity":4,"reference":"order/2"}`, 200, func(m map[string]any) bool { return m["reserved"] == 8.0 }, ""},
			{"POST", "/v1/items/TEA-SEN-100/releases", `{"warehouse":"nl-ams","quantity":4,"reference":"order/1"}`, 200, func(m map[string]any) bool { return m["reserved"] == 4.0 }, ""},
			{"GET", "/v1/items/TEA-SEN-100", "", 200, func(m map[string]any) bool { return m["on_hand"] == 10.0 && m["available"] == 6.0 }, ""},
			{"GET", "/v1/items/NOPE-1", "", 404, nil, ""},
			{"GET", "/healthz", "", 200, nil, ""},
			{"GET", "/readyz", "", 200, nil, ""},
		}
		for _, s := range steps {
			out := call(s.method, s.path, s.body, s.token, s.status)
			if s.check != nil && !s.check(out) {
				t.Fatalf("%s %s %s: unexpected body %v", s.method, s.path, s.body, out)
			}
		}
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/metrics: %v %v", resp, err)
		}
		resp.Body.Close()
	})
}

// TestOwnershipClosedWithoutToken checks that a service with no admin token
// configured refuses the ownership switch instead of leaving it open.
func TestOwnershipClosedWithoutToken(t *testing.T) {
	svc := newService(t, dbtest.SQLiteDSN(t))
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/ownership", bytes.NewBufferString(`{"owner":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer anything-at-all-0123456789")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("PUT /v1/ownership without a configured token: %d %s, want 403 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if svc.Owner() {
		t.Fatal("the refused switch changed ownership")
	}
}

// TestReadyAfterPrepare checks that Ready, which the phase watcher waits
// on before it changes ownership, closes only once the database is
// migrated.
func TestReadyAfterPrepare(t *testing.T) {
	svc := newUnprepared(t, dbtest.SQLiteDSN(t))
	select {
	case <-svc.Ready():
		t.Fatal("Ready is closed before Prepare")
	default:
	}
	if err := svc.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Ready():
	default:
		t.Fatal("Ready is still open after Prepare")
	}
	if err := svc.SetOwner(context.Background(), true); err != nil {
		t.Fatalf("SetOwner once ready: %v", err)
	}
}
