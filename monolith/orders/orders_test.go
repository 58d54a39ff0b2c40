package orders_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

type line = map[string]any

func order(customerID int64, lines ...line) map[string]any {
	return map[string]any{"customer_id": customerID, "lines": lines}
}

func stockOf(t *testing.T, s *shoptest.Shop, ref string) inventory.ProductStock {
	t.Helper()
	st, err := s.Inventory().Stock(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOrdersHTTP(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithConfig(func(c *monolith.Config) { c.MaxBodyBytes = 8192 }))
		beans := shop.CreateProduct("ORD-BEANS", 1290)
		mug := shop.CreateProduct("ORD-MUG", 1690)
		scarce := shop.CreateProduct("ORD-SCARCE", 5000)
		old := shop.CreateProduct("ORD-OLD", 100)
		usd := shop.CreateProduct("ORD-USD", 100)
		inactive := false
		if _, err := shop.Catalog().Update(context.Background(), old.ID, catalog.Patch{Active: &inactive}); err != nil {
			t.Fatal(err)
		}
		usdCode := "USD"
		if _, err := shop.Catalog().Update(context.Background(), usd.ID, catalog.Patch{Currency: &usdCode}); err != nil {
			t.Fatal(err)
		}
		shop.AddStock(beans.Ref, "AMS1", 100)
		shop.AddStock(beans.Ref, "BER1", 50)
		shop.AddStock(mug.Ref, "BER1", 30)
		shop.AddStock(scarce.Ref, "MAD1", 2)
		shop.AddStock(usd.Ref, "AMS1", 5)
		ada := shop.CreateCustomer("ada@example.com")
		bob := shop.CreateCustomer("bob@example.com")

		var placed orders.Order
		t.Run("place", func(t *testing.T) {
			s := shop.With(t)
			r := s.Post("/api/orders", order(ada.ID, line{"sku": "ord-mug", "quantity": 2}, line{"sku": "ORD-BEANS", "quantity": 3})).Expect(http.StatusCreated)
			r.Decode(&placed)
			if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/api/orders/%d", placed.ID) {
				t.Fatalf("Location = %q", loc)
			}
			if placed.Status != orders.StatusPlaced || placed.CustomerID != ada.ID || placed.CustomerEmail != "ada@example.com" ||
				placed.Currency != "EUR" || placed.TotalCents != 2*1690+3*1290 || placed.Version != 1 ||
				placed.PaidAt != nil || placed.ShippedAt != nil || placed.CancelledAt != nil {
				t.Fatalf("placed %+v", placed)
			}
			want := []orders.Line{
				{LineNo: 1, SKU: "ORD-MUG", ProductRef: mug.Ref, ProductName: mug.Name, UnitPriceCents: 1690, Quantity: 2, LineTotalCents: 3380, Warehouse: "BER1"},
				{LineNo: 2, SKU: "ORD-BEANS", ProductRef: beans.Ref, ProductName: beans.Name, UnitPriceCents: 1290, Quantity: 3, LineTotalCents: 3870, Warehouse: "AMS1"},
			}
			if len(placed.Lines) != 2 || placed.Lines[0] != want[0] || placed.Lines[1] != want[1] {
				t.Fatalf("lines %+v, want %+v", placed.Lines, want)
			}
			if st := stockOf(t, shop, beans.Ref); st.Reserved != 3 || st.Warehouses[0].Reserved != 3 {
				t.Fatalf("beans stock after the order: %+v", st)
			}
			var got orders.Order
			s.Get(fmt.Sprintf("/api/orders/%d", placed.ID)).Expect(http.StatusOK).Decode(&got)
			if got.ID != placed.ID || got.TotalCents != placed.TotalCents || len(got.Lines) != 2 || got.Lines[1] != want[1] || !got.PlacedAt.Equal(placed.PlacedAt) {
				t.Fatalf("get = %+v, want %+v", got, placed)
			}
		})

		t.Run("copies survive changes to customer and product", func(t *testing.T) {
			s := shop.With(t)
			s.Patch(fmt.Sprintf("/api/customers/%d", ada.ID), map[string]any{"email": "ada@new.example.com"}).Expect(http.StatusOK)
			s.Patch(fmt.Sprintf("/api/catalog/products/%d", mug.ID), map[string]any{"price_cents": 9999, "name": "Renamed mug"}).Expect(http.StatusOK)
			var got orders.Order
			s.Get(fmt.Sprintf("/api/orders/%d", placed.ID)).Expect(http.StatusOK).Decode(&got)
			if got.CustomerEmail != "ada@example.com" || got.Lines[0].UnitPriceCents != 1690 || got.Lines[0].ProductName != mug.Name || got.TotalCents != placed.TotalCents {
				t.Fatalf("order changed with its customer or product: %+v", got)
			}
		})

		t.Run("lifecycle", func(t *testing.T) {
			s := shop.With(t)
			path := fmt.Sprintf("/api/orders/%d", placed.ID)
			s.Post(path+"/ship", nil).Expect(http.StatusConflict)
			var o orders.Order
			s.Post(path+"/pay", nil).Expect(http.StatusOK).Decode(&o)
			if o.Status != orders.StatusPaid || o.PaidAt == nil || o.Version != 2 || len(o.Lines) != 2 {
				t.Fatalf("paid %+v", o)
			}
			p := s.Post(path+"/pay", nil).Expect(http.StatusConflict).Problem()
			if !strings.Contains(p.Detail, "is 20 (paid)") {
				t.Fatalf("second pay: %q", p.Detail)
			}
			before := stockOf(t, shop, beans.Ref)
			s.Post(path+"/ship", nil).Expect(http.StatusOK).Decode(&o)
			if o.Status != orders.StatusShipped || o.ShippedAt == nil || o.Version != 3 {
				t.Fatalf("shipped %+v", o)
			}
			after := stockOf(t, shop, beans.Ref)
			if after.OnHand != before.OnHand-3 || after.Reserved != before.Reserved-3 || after.Available != before.Available {
				t.Fatalf("shipping 3 beans took stock from %+v to %+v", before, after)
			}
			s.Post(path+"/cancel", nil).Expect(http.StatusConflict).Problem()
		})

		t.Run("cancel releases stock", func(t *testing.T) {
			s := shop.With(t)
			for _, pay := range []bool{false, true} {
				before := stockOf(t, shop, mug.Ref)
				var o orders.Order
				s.Post("/api/orders", order(bob.ID, line{"sku": "ORD-MUG", "quantity": 4})).Expect(http.StatusCreated).Decode(&o)
				if pay {
					s.Post(fmt.Sprintf("/api/orders/%d/pay", o.ID), nil).Expect(http.StatusOK)
				}
				s.Post(fmt.Sprintf("/api/orders/%d/cancel", o.ID), nil).Expect(http.StatusOK).Decode(&o)
				if o.Status != orders.StatusCancelled || o.CancelledAt == nil {
					t.Fatalf("cancelled %+v", o)
				}
				if after := stockOf(t, shop, mug.Ref); after.Reserved != before.Reserved || after.OnHand != before.OnHand {
					t.Fatalf("cancel (paid: %v) left stock at %+v, was %+v", pay, after, before)
				}
				s.Post(fmt.Sprintf("/api/orders/%d/cancel", o.ID), nil).Expect(http.StatusConflict)
				s.Post(fmt.Sprintf("/api/orders/%d/pay", o.ID), nil).Expect(http.StatusConflict)
			}
		})

		t.Run("a refused order reserves nothing", func(t *testing.T) {
			s := shop.With(t)
			before := stockOf(t, shop, beans.Ref)
			s.Post("/api/orders", order(bob.ID, line{"sku": "ORD-BEANS", "quantity": 5}, line{"sku": "ORD-SCARCE", "quantity": 3})).
				Expect(http.StatusConflict).Problem()
			if after := stockOf(t, shop, beans.Ref); after.Reserved != before.Reserved {
				t.Fatalf("the refused order left beans reserved: %+v, was %+v", after, before)
			}
			var pg orders.Page
			s.Get(fmt.Sprintf("/api/orders?customer_id=%d&status=10", bob.ID)).Expect(http.StatusOK).Decode(&pg)
			if len(pg.Items) != 0 {
				t.Fatalf("the refused order was stored: %+v", pg.Items)
			}
		})

		t.Run("list", func(t *testing.T) {
			s := shop.With(t)
			var ids []int64
			path := "/api/orders?limit=1"
			for pages := 0; path != ""; pages++ {
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				var pg orders.Page
				s.Get(path).Expect(http.StatusOK).Decode(&pg)
				for _, o := range pg.Items {
					ids = append(ids, o.ID)
					if len(o.Lines) == 0 {
						t.Fatalf("listed order %d without lines", o.ID)
					}
				}
				path = ""
				if pg.NextCursor != "" {
					path = "/api/orders?limit=1&cursor=" + pg.NextCursor
				}
			}
			if len(ids) != 3 || ids[0] <= ids[1] || ids[1] <= ids[2] {
				t.Fatalf("orders listed as %v, want 3 newest first", ids)
			}
			tests := []struct {
				query string
				n     int
			}{
				{fmt.Sprintf("customer_id=%d", ada.ID), 1},
				{fmt.Sprintf("customer_id=%d", bob.ID), 2},
				{"status=30", 1},
				{"status=90", 2},
				{fmt.Sprintf("status=90&customer_id=%d", ada.ID), 0},
				{"customer_id=999999", 0},
			}
			for _, tt := range tests {
				var pg orders.Page
				s.Get("/api/orders?" + tt.query).Expect(http.StatusOK).Decode(&pg)
				if len(pg.Items) != tt.n {
					t.Errorf("?%s gave %d orders, want %d", tt.query, len(pg.Items), tt.n)
				}
			}
		})

		many := make([]line, 51)
		for i := range many {
			many[i] = line{"sku": fmt.Sprintf("X-%d", i), "quantity": 1}
		}
		shop.Run(t, []shoptest.Case{
			{Name: "malformed JSON", Method: "POST", Path: "/api/orders", Body: `{"customer_id":1,"lines":[`, Status: 400, Detail: "malformed JSON"},
			{Name: "quantity as string", Method: "POST", Path: "/api/orders", Body: `{"customer_id":1,"lines":[{"sku":"ORD-MUG","quantity":"2"}]}`, Status: 400, Detail: `"lines.quantity" must be an integer`},
			{Name: "customer as string", Method: "POST", Path: "/api/orders", Body: `{"customer_id":"1","lines":[]}`, Status: 400, Detail: `"customer_id" must be an integer`},
			{Name: "lines not a list", Method: "POST", Path: "/api/orders", Body: `{"customer_id":1,"lines":{"sku":"ORD-MUG"}}`, Status: 400, Detail: `"lines" must be an array`},
			{Name: "too large", Method: "POST", Path: "/api/orders", Body: `{"customer_id":1,"lines":[{"sku":"` + strings.Repeat("A", 9000) + `","quantity":1}]}`, Status: 413},
			{Name: "no lines", Method: "POST", Path: "/api/orders", Body: order(ada.ID), Status: 422, Field: "lines"},
			{Name: "too many lines", Method: "POST", Path: "/api/orders", Body: order(ada.ID, many...), Status: 422, Field: "lines"},
			{Name: "no customer", Method: "POST", Path: "/api/orders", Body: order(0, line{"sku": "ORD-MUG", "quantity": 1}), Status: 422, Field: "customer_id"},
			{Name: "zero quantity", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-MUG", "quantity": 0}), Status: 422, Field: "lines[0].quantity"},
			{Name: "negative quantity", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-MUG", "quantity": 1}, line{"sku": "ORD-BEANS", "quantity": -2}), Status: 422, Field: "lines[1].quantity"},
			{Name: "huge quantity", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-MUG", "quantity": 1001}), Status: 422, Field: "lines[0].quantity"},
			{Name: "missing SKU", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"quantity": 1}), Status: 422, Field: "lines[0].sku"},
			{Name: "repeated SKU", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-MUG", "quantity": 1}, line{"sku": "ord-mug", "quantity": 1}), Status: 422, Field: "lines[1].sku"},
			{Name: "unknown customer", Method: "POST", Path: "/api/orders", Body: order(999999, line{"sku": "ORD-MUG", "quantity": 1}), Status: 422, Slug: "unknown-customer", Field: "customer_id"},
			{Name: "unknown SKU", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-MUG", "quantity": 1}, line{"sku": "NOPE-1", "quantity": 1}), Status: 422, Slug: "unknown-sku", Field: "lines[1].sku", Detail: "NOPE-1"},
			{Name: "inactive product", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-OLD", "quantity": 1}), Status: 422, Slug: "product-inactive", Field: "lines[0].sku"},
			{Name: "mixed currencies", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-MUG", "quantity": 1}, line{"sku": "ORD-USD", "quantity": 1}), Status: 422, Field: "lines[1].sku", Detail: "USD"},
			{Name: "out of stock", Method: "POST", Path: "/api/orders", Body: order(ada.ID, line{"sku": "ORD-SCARCE", "quantity": 3}), Status: 409, Slug: "out-of-stock", Detail: "ORD-SCARCE"},
			{Name: "get bad id", Method: "GET", Path: "/api/orders/first", Status: 400},
			{Name: "get unknown", Method: "GET", Path: "/api/orders/999999", Status: 404, Detail: "no order has id 999999"},
			{Name: "pay unknown", Method: "POST", Path: "/api/orders/999999/pay", Status: 404},
			{Name: "ship unknown", Method: "POST", Path: "/api/orders/999999/ship", Status: 404},
			{Name: "cancel bad id", Method: "POST", Path: "/api/orders/0/cancel", Status: 400},
			{Name: "list bad status", Method: "GET", Path: "/api/orders?status=15", Status: 400, Detail: "status must be one of"},
			{Name: "list status by name", Method: "GET", Path: "/api/orders?status=paid", Status: 400, Detail: "status must be one of"},
			{Name: "list bad customer", Method: "GET", Path: "/api/orders?customer_id=abc", Status: 400, Detail: "customer_id"},
			{Name: "list zero customer", Method: "GET", Path: "/api/orders?customer_id=0", Status: 400, Detail: "customer_id"},
			{Name: "list bad cursor", Method: "GET", Path: "/api/orders?cursor=" + strings.Repeat("A", 600), Status: 400, Detail: "cursor"},
			{Name: "list unknown parameter", Method: "GET", Path: "/api/orders?customer=1", Status: 400, Detail: "unknown query parameter"},
		})
	})
}
