package inventory_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stranglerkit/strangler/acl/inventory/contract"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestContract runs the inventory's contract suite against the monolith's
// own /api/inventory: the reference that the extracted service's legacy
// facade is held to by the same suite.
func TestContract(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn)
		var n atomic.Int64
		contract.Run(t, contract.Target{
			URL:    shop.URL,
			Client: shop.Server.Client(),
			Product: func(t *testing.T) string {
				var p catalog.Product
				shop.With(t).Post("/api/catalog/products", map[string]any{
					"sku": fmt.Sprintf("CT-%04d", n.Add(1)), "name": "Contract product", "price_cents": 500, "currency": "EUR",
				}).Expect(http.StatusCreated).Decode(&p)
				return p.Ref
			},
		})
	})
}
