package orders_test

import (
	"context"
	"errors"
	"testing"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/httpx"
)

// TestHandleProduct feeds the service's own product handler (the price
// read model and product_names, as its read models' consumer registers
// it) the product events of the shared topic: a priced one is kept, one
// without a price, as the inventory backfill's product snapshot, is
// skipped as another reader's rather than dead-lettered, and one whose
// price cannot be read fails permanently.
func TestHandleProduct(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		svc, err := orders.New(w.ordersConfig(siblingDSN(t, dsn)), orders.Options{Logger: httpx.Discard})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		ctx := context.Background()
		if err := svc.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name      string
			payload   map[string]any
			permanent bool
			// wantPrice is the price kept for the SKU afterwards; -1 none.
			wantPrice int64
		}{
			{name: "without a price, as inventory's snapshot", payload: map[string]any{"id": 901, "product_ref": "P-000901", "sku": "nop-901", "active": true}, wantPrice: -1},
			{name: "with a price", payload: map[string]any{"id": 902, "product_ref": "P-000902", "sku": "ok-902", "name": "Kept", "price_cents": 1250, "currency": "EUR", "version": 1}, wantPrice: 1250},
			{name: "with a price it cannot read", payload: map[string]any{"id": 903, "product_ref": "P-000903", "sku": "bad-903", "price_cents": "lots"}, permanent: true, wantPrice: -1},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ev := w.event(aclorders.ProductAggregate, tc.payload["product_ref"].(string), aclorders.ProductSnapshot, tc.payload)
				err := db.Transact(ctx, svc.DB(), func(ctx context.Context) error {
					return svc.Core().HandleProduct(ctx, db.Conn(ctx, svc.DB()), ev)
				})
				if got := errors.Is(err, consumer.ErrPermanent); got != tc.permanent || (!tc.permanent && err != nil) {
					t.Fatalf("HandleProduct: %v, want permanent %v", err, tc.permanent)
				}
				var prices []int64
				sku := map[string]string{"nop-901": "NOP-901", "ok-902": "OK-902", "bad-903": "BAD-903"}[tc.payload["sku"].(string)]
				if err := svc.DB().Raw("SELECT price_cents FROM acl_prices WHERE sku = ?", sku).Scan(&prices).Error; err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.wantPrice < 0 && len(prices) != 0:
					t.Errorf("price of %s kept as %v, want none", sku, prices)
				case tc.wantPrice >= 0 && (len(prices) != 1 || prices[0] != tc.wantPrice):
					t.Errorf("price of %s is %v, want %d", sku, prices, tc.wantPrice)
				}
			})
		}
	})
}
