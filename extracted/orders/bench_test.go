package orders_test

import (
	"net/http"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/payments"
)

// BenchmarkPlace places one-line orders over HTTP on loopback, on SQLite:
// through the orders service's saga (the inventory service and the
// monolith's payments module as participants, three saga steps and their
// log) and, in the same run, through the monolith's in-process
// transaction. The ratio of their orders/s is the saga's cost.
func BenchmarkPlace(b *testing.B) {
	w := newWorld(b, dbtest.SQLiteDSN(b))
	w.shop.AddStock(w.products[0].Ref, "AMS1", 1_000_000)
	w.call(http.MethodPost, w.invURL+"/v1/items/"+w.products[0].SKU+"/adjustments", map[string]any{"warehouse": "nl-ams", "delta": 1_000_000, "reason": "bench"}).expect(http.StatusOK)
	_, err := w.shop.Payments().SetLimit(b.Context(), w.customer.ID, paymentsLimit(payments.MaxCreditLimitCents))
	if err != nil {
		b.Fatal(err)
	}
	_, svcURL := w.startOrders(dbtest.SQLiteDSN(b))
	body := map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 1}}}
	for _, side := range []struct{ name, url string }{{"monolith", w.shop.URL}, {"saga", svcURL}} {
		b.Run(side.name, func(b *testing.B) {
			for range b.N {
				w.call(http.MethodPost, side.url+"/api/orders", body).expect(http.StatusCreated)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

func paymentsLimit(cents int64) payments.LimitPatch {
	return payments.LimitPatch{CreditLimitCents: &cents}
}
