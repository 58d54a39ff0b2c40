package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
)

// TestContractParity runs one suite of requests against the monolith's
// orders module and the orders service, each with the same customer,
// products and stock, and requires the same answers: status, problem type
// and invalid fields, and the same order JSON once ids and times are set
// aside (a list's items each so, its next_cursor by presence). The
// requests run in order; {id} is the order the last successful placement
// on that side gave, {customer} the customer, {cursor} the next_cursor of
// the side's last list. Before a list, the service's projections are
// waited for: its lists read them, and trail its writes by their lag.
func TestContractParity(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		for i, p := range w.products {
			w.shop.AddStock(p.Ref, "AMS1", stockOf[i])
		}
		svc, svcURL := w.startOrders(siblingDSN(t, dsn))
		projections, err := orders.NewProjections(svc.DB(), eventsource.RunnerConfig{}, eventsource.RunnerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer projections.Close()
		a, b := w.products[0].SKU, w.products[1].SKU
		line := func(sku string, q any) map[string]any { return map[string]any{"sku": sku, "quantity": q} }
		order := func(customer any, lines ...map[string]any) map[string]any {
			return map[string]any{"customer_id": customer, "lines": lines}
		}
		c := w.customer.ID
		many := make([]map[string]any, 51)
		for i := range many {
			many[i] = line(fmt.Sprintf("SKU-%d", i), 1)
		}
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
			{"ship twice", "POST", "/api/orders/{id}/ship", nil, 409},
			{"cancel a shipped order", "POST", "/api/orders/{id}/cancel", nil, 409},
			{"get the shipped order", "GET", "/api/orders/{id}", nil, 200},
			{"place another", "POST", "/api/orders", order(c, line(a, 1)), 201},
			{"ship before paying", "POST", "/api/orders/{id}/ship", nil, 409},
			{"cancel", "POST", "/api/orders/{id}/cancel", nil, 200},
			{"cancel twice", "POST", "/api/orders/{id}/cancel", nil, 409},
			{"pay a cancelled order", "POST", "/api/orders/{id}/pay", nil, 409},
			{"get the cancelled order", "GET", "/api/orders/{id}", nil, 200},
			{"place a third", "POST", "/api/orders", order(c, line(b, 2)), 201},
			{"pay the third", "POST", "/api/orders/{id}/pay", nil, 200},
			{"cancel a paid order", "POST", "/api/orders/{id}/cancel", nil, 200},
			{"place a fourth", "POST", "/api/orders", order(c, line(a, 1), line(b, 1)), 201},
			{"list", "GET", "/api/orders", nil, 200},
			{"list by customer", "GET", "/api/orders?customer_id={customer}", nil, 200},
			{"list by customer, first page", "GET", "/api/orders?customer_id={customer}&limit=3", nil, 200},
			{"list by customer, next page", "GET", "/api/orders?customer_id={customer}&limit=3&cursor={cursor}", nil, 200},
			{"list of a customer without orders", "GET", "/api/orders?customer_id=999999", nil, 200},
			{"list placed", "GET", "/api/orders?status=10", nil, 200},
			{"list shipped", "GET", "/api/orders?status=30", nil, 200},
			{"list cancelled", "GET", "/api/orders?status=90", nil, 200},
			{"list paid", "GET", "/api/orders?status=20", nil, 200},
			{"list by customer and status", "GET", "/api/orders?customer_id={customer}&status=90&limit=1", nil, 200},
			{"out of stock", "POST", "/api/orders", order(c, line(a, 1), line(b, stockOf[1]+1)), 409},
			{"unknown customer", "POST", "/api/orders", order(999999, line(a, 1)), 422},
			{"unknown SKU", "POST", "/api/orders", order(c, line("NO-SUCH-SKU", 1)), 422},
			{"invalid lines", "POST", "/api/orders", order(c, line(a, 0), line("", 1), line(a, 1)), 422},
			{"quantity over the limit", "POST", "/api/orders", order(c, line(a, 1001)), 422},
			{"too many lines", "POST", "/api/orders", order(c, many...), 422},
			{"no lines", "POST", "/api/orders", order(0), 422},
			{"customer id of the wrong type", "POST", "/api/orders", order("seven", line(a, 1)), 400},
			{"quantity of the wrong type", "POST", "/api/orders", order(c, line(a, "two")), 400},
			{"not JSON", "POST", "/api/orders", []byte(`{"customer_id":`), 400},
			{"unknown order", "GET", "/api/orders/424242", nil, 404},
			{"bad id", "GET", "/api/orders/x", nil, 400},
			{"zero id", "GET", "/api/orders/0", nil, 400},
			{"pay unknown", "POST", "/api/orders/424242/pay", nil, 404},
			{"ship unknown", "POST", "/api/orders/424242/ship", nil, 404},
			{"cancel unknown", "POST", "/api/orders/424242/cancel", nil, 404},
			{"bad status filter", "GET", "/api/orders?status=15", nil, 400},
			{"bad customer filter", "GET", "/api/orders?customer_id=-1", nil, 400},
			{"bad limit", "GET", "/api/orders?limit=101", nil, 400},
			{"bad cursor", "GET", "/api/orders?cursor=nonsense", nil, 400},
			{"unknown parameter", "GET", "/api/orders?colour=red", nil, 400},
		}
		// listed is how many orders each list answers, on either side.
		listed := map[string]int{"list": 4, "list by customer": 4, "list by customer, first page": 3, "list by customer, next page": 1,
			"list of a customer without orders": 0, "list placed": 1, "list shipped": 1, "list cancelled": 2, "list paid": 0,
			"list by customer and status": 1}
		sides := map[string]string{"monolith": w.shop.URL, "service": svcURL}
		last := map[string]int64{}
		cursor := map[string]string{}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := w.with(t)
				if tc.method == "GET" && (tc.path == "/api/orders" || strings.HasPrefix(tc.path, "/api/orders?")) {
					caughtUp(t, projections)
				}
				got := map[string]any{}
				for side, base := range sides {
					path := strings.NewReplacer("{id}", fmt.Sprint(last[side]), "{customer}", fmt.Sprint(c), "{cursor}", cursor[side]).Replace(tc.path)
					ans := w.call(tc.method, base+path, tc.body)
					if ans.status != tc.status {
						t.Fatalf("%s: %s %s: %d %s, want %d", side, tc.method, path, ans.status, ans.body, tc.status)
					}
					var v map[string]any
					ans.decode(&v)
					if tc.method == "POST" && tc.path == "/api/orders" && ans.status == 201 {
						last[side] = int64(v["id"].(float64))
					}
					if next, ok := v["next_cursor"].(string); ok || v["items"] != nil {
						cursor[side] = next
					}
					if n, ok := listed[tc.name]; ok {
						if items, _ := v["items"].([]any); len(items) != n {
							t.Fatalf("%s: %s %s: %d orders, want %d: %s", side, tc.method, path, len(items), n, ans.body)
						}
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

// caughtUp waits until every projection of r has applied every event.
func caughtUp(t *testing.T, r *eventsource.Runner) {
	t.Helper()
	eventually(t, "the service's projections catch up", func() bool {
		sts, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			if st.LagEvents > 0 {
				return false
			}
		}
		return true
	})
}

// comparable keeps of an answer what both sides must agree on: an order
// without its id and times, a list's items so and whether it has a next
// page, a problem's type, status and invalid fields (the details may name
// the side's own ids).
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
	if items, ok := v["items"].([]any); ok {
		var out []any
		for _, it := range items {
			out = append(out, comparable(it.(map[string]any)))
		}
		return map[string]any{"items": out, "next_cursor": v["next_cursor"] != nil}
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
