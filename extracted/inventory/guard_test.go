package inventory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/saga"
)

// TestSagaKeyedMoves drives the reservations and releases that carry an
// Idempotency-Key, as a saga participant gets them: a repeated
// reservation answers its first result and reserves once; the release by
// its key undoes exactly it, once; a release of a key never reserved is a
// null compensation, and the reservation that arrives after it is refused
// (409 step-compensated).
func TestSagaKeyedMoves(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		svc := newService(t, dsn)
		learnProduct(t, svc, 7, "TEA-SEN-100")
		if err := svc.SetOwner(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		t.Cleanup(srv.Close)
		call := func(path, key, body string) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set(saga.HeaderIdempotencyKey, key)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		if st, out := call("/v1/items/TEA-SEN-100/adjustments", "", `{"warehouse":"nl-ams","delta":10}`); st != 200 {
			t.Fatalf("adjust: %d %v", st, out)
		}
		const reserve, release = "/v1/items/TEA-SEN-100/reservations", "/v1/items/TEA-SEN-100/releases"
		steps := []struct {
			name, path, key, body string
			status                int
			reserved              float64 // in the answer, or -1 for none
			slug                  string
		}{
			{"reserve", reserve, "order-1/reserve-stock/1", `{"quantity":3,"reference":"order/1"}`, 200, 3, ""},
			{"repeat answers the first result", reserve, "order-1/reserve-stock/1", `{"quantity":3,"reference":"order/1"}`, 200, 3, ""},
			{"another key reserves again", reserve, "order-2/reserve-stock/1", `{"quantity":2}`, 200, 5, ""},
			{"release by key undoes that reservation", release, "order-1/reserve-stock/1", `{}`, 200, 2, ""},
			{"a second release is a no-op", release, "order-1/reserve-stock/1", `{}`, 204, -1, ""},
			{"after its release the key is refused", reserve, "order-1/reserve-stock/1", `{"quantity":3}`, 409, -1, "step-compensated"},
			{"null compensation", release, "order-3/reserve-stock/1", ``, 204, -1, ""},
			{"the late reservation is refused", reserve, "order-3/reserve-stock/1", `{"quantity":1}`, 409, -1, "step-compensated"},
			{"a bad body is still a 422", reserve, "order-4/reserve-stock/1", `{"quantity":0}`, 422, -1, "validation"},
		}
		for _, s := range steps {
			st, out := call(s.path, s.key, s.body)
			if st != s.status {
				t.Fatalf("%s: %d %v, want %d", s.name, st, out, s.status)
			}
			if s.reserved >= 0 && out["reserved"] != s.reserved {
				t.Errorf("%s: reserved %v, want %v", s.name, out["reserved"], s.reserved)
			}
			if s.slug != "" && out["type"] != "https://github.com/stranglerkit/strangler/blob/main/docs/problems.md#"+s.slug {
				t.Errorf("%s: problem %v, want %s", s.name, out, s.slug)
			}
		}
		var stock map[string]any
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/items/TEA-SEN-100", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&stock)
		if stock["reserved"] != 2.0 || stock["on_hand"] != 10.0 {
			t.Errorf("stock %v: want 2 reserved (order 2's) of 10", stock)
		}
	})
}
