package orders_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestContractParity runs one suite of requests against the monolith's
// orders module and the orders service, each with the same customer,
// products and stock, and requires the same answers: status, problem type
// and invalid fields, and the same order JSON once ids and times are set
// aside. The requests run in order; {id} is the order the last successful
// placement on that side gave.
func TestContractParity(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		for i, p := range w.products {
			w.shop.AddStock(p.Ref, "AMS1", stockOf[i])
		}
		_, svcURL := w.startOrders(siblingDSN(t, dsn))
		a, b := w.products[0].SKU, w.products[1].SKU
		line := func(sku string, q int) map[string]any { return map[string]any{"sku": sku, "quantity": q} }
		order := func(customer int64, lines ...map[string]any) map[string]any {
			return map[string]any{"customer_id": customer, "lines": lines}
		}
		c := w.customer.ID
		cases := []struct {
			name, method, path string
			body               any
			status             int
		}{
			{"place", "POST", "/api/orders", order(c, line(strings.ToLower(a), 2), line(b, 1)), 201},
			{"get", "GET", "/api/orders/{id}", nil, 200},
			{"pay", "POST", "/api/orders/{id}/pay", nil, 200},
			{"pay twice", "POST", "/api/orders/{id}/pay", nil, 409},
			{"ship", "POST", "/api/orders/{id}/ship", nil, 200},
			{"cancel a shipped order", "POST", "/api/orders/{id}/cancel", nil, 409},
			{"place another", "POST", "/api/orders", order(c, line(a, 1)), 201},
			{"ship before paying", "POST", "/api/orders/{id}/ship", nil, 409},
			{"cancel", "POST", "/api/orders/{id}/cancel", nil, 200},
			{"out of stock", "POST", "/api/orders", order(c, line(a, 1), line(b, stockOf[1]+1)), 409},
			{"unknown customer", "POST", "/api/orders", order(999999, line(a, 1)), 422},
			{"unknown SKU", "POST", "/api/orders", order(c, line("NO-SUCH-SKU", 1)), 422},
			{"invalid lines", "POST", "/api/orders", order(c, line(a, 0), line("", 1), line(a, 1)), 422},
			{"no lines", "POST", "/api/orders", order(0), 422},
			{"not JSON", "POST", "/api/orders", []byte(`{"customer_id":`), 400},
			{"unknown order", "GET", "/api/orders/424242", nil, 404},
			{"bad id", "GET", "/api/orders/x", nil, 400},
			{"pay unknown", "POST", "/api/orders/424242/pay", nil, 404},
			{"bad status filter", "GET", "/api/orders?status=15", nil, 400},
			{"bad customer filter", "GET", "/api/orders?customer_id=-1", nil, 400},
			{"bad limit", "GET", "/api/orders?limit=101", nil, 400},
			{"bad cursor", "GET", "/api/orders?cursor=nonsense", nil, 400},
			{"unknown parameter", "GET", "/api/orders?colour=red", nil, 400},
		}
		sides := map[string]string{"monolith": w.shop.URL, "service": svcURL}
		last := map[string]int64{}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := w.with(t)
				got := map[string]any{}
				for side, base := range sides {
					path := strings.ReplaceAll(tc.path, "{id}", fmt.Sprint(last[side]))
					ans := w.call(tc.method, base+path, tc.body)
					if ans.status != tc.status {
						t.Fatalf("%s: %s %s: %d %s, want %d", side, tc.method, path, ans.status, ans.body, tc.status)
					}
					var v map[string]any
					ans.decode(&v)
					if tc.method == "POST" && tc.path == "/api/orders" && ans.status == 201 {
						last[side] = int64(v["id"].(float64))
					}
					got[side] = comparable(v)
				}
				if !reflect.DeepEqual(got["monolith"], got["service"]) {
					m, _ := json.Marshal(got["monolith"])
					s, _ := json.Marshal(got["service"])
					t.Errorf("answers differ:\nmonolith %s\nservice  %s", m, s)
				}
			})
		}
	})
}

// comparable keeps of an answer what both sides must agree on: an order
// without its id and times, a problem's type, status and invalid fields
// (the details may name the side's own ids).
func comparable(v map[string]any) map[string]any {
	if _, ok := v["type"]; ok {
		out := map[string]any{"type": v["type"], "status": v["status"], "title": v["title"]}
		if errs, ok := v["errors"].([]any); ok {
			var fields []any
			for _, e := range errs {
				fields = append(fields, e.(map[string]any)["field"])
			}
			out["fields"] = fields
		}
		return out
	}
	out := map[string]any{}
	for k, x := range v {
		switch k {
		case "id", "placed_at", "updated_at":
		case "paid_at", "shipped_at", "cancelled_at":
			out[k] = x != nil
		default:
			out[k] = x
		}
	}
	return out
}
