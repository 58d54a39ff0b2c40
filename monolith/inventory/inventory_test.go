package inventory_test

import (
	"net/http"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// level is what the test expects of a stock level.
type level struct {
	wh                          string
	onHand, reserved, available int
}

func checkLevel(t *testing.T, l inventory.Level, ref string, want level) {
	t.Helper()
	got := level{l.Warehouse, l.OnHand, l.Reserved, l.Available}
	if l.ProductRef != ref || got != want {
		t.Fatalf("level %s %+v, want %s %+v", l.ProductRef, got, ref, want)
	}
	if l.Available != l.OnHand-l.Reserved {
		t.Fatalf("qty_available %d != on_hand %d - reserved %d", l.Available, l.OnHand, l.Reserved)
	}
}

func TestInventoryHTTP(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn)
		a := shop.CreateProduct("INV-A", 100)
		b := shop.CreateProduct("INV-B", 200)
		ref := a.Ref
		base := "/api/inventory/stock/" + ref

		t.Run("warehouses", func(t *testing.T) {
			var ws struct{ Items []inventory.Warehouse }
			shop.With(t).Get("/api/inventory/warehouses").Expect(http.StatusOK).Decode(&ws)
			var codes []string
			for _, w := range ws.Items {
				codes = append(codes, w.Code)
				if w.Name == "" || len(w.Country) != 2 {
					t.Errorf("warehouse %+v", w)
				}
			}
			if len(codes) != 3 || codes[0] != "AMS1" || codes[1] != "BER1" || codes[2] != "MAD1" {
				t.Fatalf("warehouses %v", codes)
			}
		})

		t.Run("lifecycle of a level", func(t *testing.T) {
			s := shop.With(t)
			var l inventory.Level
			s.Post(base+"/adjustments", map[string]any{"warehouse": "ams1", "delta": 10, "reason": "delivery 1"}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"AMS1", 10, 0, 10})
			if l.Version != 1 {
				t.Fatalf("new level has version %d", l.Version)
			}
			s.Post(base+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": 5}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"AMS1", 15, 0, 15})
			if l.Version != 2 {
				t.Fatalf("version %d after the second delivery", l.Version)
			}
			s.Post(base+"/adjustments", map[string]any{"warehouse": "BER1", "delta": 20}).Expect(http.StatusOK)
			// Without a warehouse, the one with the most available wins.
			s.Post(base+"/reservations", map[string]any{"quantity": 4, "reference": "order/1"}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"BER1", 20, 4, 16})
			s.Post(base+"/reservations", map[string]any{"warehouse": "AMS1", "quantity": 15}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"AMS1", 15, 15, 0})
			s.Post(base+"/releases", map[string]any{"warehouse": "AMS1", "quantity": 5}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"AMS1", 15, 10, 5})
			s.Post(base+"/shipments", map[string]any{"warehouse": "AMS1", "quantity": 10}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"AMS1", 5, 0, 5})
			s.Post(base+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": -5, "reason": "stock count"}).Expect(http.StatusOK).Decode(&l)
			checkLevel(t, l, ref, level{"AMS1", 0, 0, 0})

			var st inventory.ProductStock
			s.Get(base).Expect(http.StatusOK).Decode(&st)
			if st.ProductRef != ref || st.OnHand != 20 || st.Reserved != 4 || st.Available != 16 || len(st.Warehouses) != 2 {
				t.Fatalf("stock %+v", st)
			}
			checkLevel(t, st.Warehouses[0], ref, level{"AMS1", 0, 0, 0})
			checkLevel(t, st.Warehouses[1], ref, level{"BER1", 20, 4, 16})

			// Every change is in the journal, with its reference.
			var n int64
			if err := shop.DB().Raw("SELECT COUNT(*) FROM inv_movements WHERE product_ref = ?", ref).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != 8 {
				t.Fatalf("%d movements journaled, want 8", n)
			}
			var reason string
			if err := shop.DB().Raw("SELECT reference FROM inv_movements WHERE product_ref = ? AND kind = 'reserve' AND warehouse_code = 'BER1'", ref).Scan(&reason).Error; err != nil || reason != "order/1" {
				t.Fatalf("reserve journaled with reference %q, %v", reason, err)
			}
		})

		t.Run("list pages and filters", func(t *testing.T) {
			s := shop.With(t)
			s.AddStock(b.Ref, "MAD1", 3)
			var all []inventory.Level
			path := "/api/inventory/stock?limit=1"
			for pages := 0; path != ""; pages++ {
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				var pg inventory.Page
				s.Get(path).Expect(http.StatusOK).Decode(&pg)
				all = append(all, pg.Items...)
				path = ""
				if pg.NextCursor != "" {
					path = "/api/inventory/stock?limit=1&cursor=" + pg.NextCursor
				}
			}
			var keys []string
			for _, l := range all {
				keys = append(keys, l.ProductRef+"/"+l.Warehouse)
			}
			want := []string{ref + "/AMS1", ref + "/BER1", b.Ref + "/MAD1"}
			if len(keys) != 3 || keys[0] != want[0] || keys[1] != want[1] || keys[2] != want[2] {
				t.Fatalf("paged through %v, want %v", keys, want)
			}
			tests := []struct {
				query string
				want  []string
			}{
				{"warehouse=mad1", []string{b.Ref + "/MAD1"}},
				{"in_stock=false", []string{ref + "/AMS1"}},
				{"in_stock=true&warehouse=BER1", []string{ref + "/BER1"}},
			}
			for _, tt := range tests {
				var pg inventory.Page
				s.Get("/api/inventory/stock?" + tt.query).Expect(http.StatusOK).Decode(&pg)
				var got []string
				for _, l := range pg.Items {
					got = append(got, l.ProductRef+"/"+l.Warehouse)
				}
				if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
					t.Errorf("?%s = %v, want %v", tt.query, got, tt.want)
				}
			}
		})

		shop.Run(t, []shoptest.Case{
			{Name: "stock of a malformed ref", Method: "GET", Path: "/api/inventory/stock/42", Status: 400, Detail: "P-000042"},
			{Name: "stock of a non-canonical ref", Method: "GET", Path: "/api/inventory/stock/P-0000042", Status: 400},
			{Name: "stock never recorded", Method: "GET", Path: "/api/inventory/stock/P-099999", Status: 404, Detail: "no stock is recorded for P-099999"},
			{Name: "adjust malformed ref", Method: "POST", Path: "/api/inventory/stock/SKU-1/adjustments", Body: `{"warehouse":"AMS1","delta":1}`, Status: 400},
			{Name: "adjust malformed JSON", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"AMS1","delta":}`, Status: 400, Detail: "malformed JSON"},
			{Name: "adjust wrong type", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"AMS1","delta":"5"}`, Status: 400, Detail: `"delta" must be an integer`},
			{Name: "adjust zero", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"AMS1","delta":0}`, Status: 422, Field: "delta"},
			{Name: "adjust huge", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"AMS1","delta":1000001}`, Status: 422, Field: "delta"},
			{Name: "adjust without warehouse", Method: "POST", Path: base + "/adjustments", Body: `{"delta":1}`, Status: 422, Field: "warehouse"},
			{Name: "adjust malformed warehouse", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"Amsterdam","delta":1}`, Status: 422, Field: "warehouse"},
			{Name: "adjust unknown warehouse", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"LON1","delta":1}`, Status: 422, Slug: "unknown-warehouse"},
			{Name: "adjust unknown product", Method: "POST", Path: "/api/inventory/stock/P-099999/adjustments", Body: `{"warehouse":"AMS1","delta":1}`, Status: 422, Slug: "unknown-product"},
			{Name: "adjust below reserved", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"BER1","delta":-17}`, Status: 409, Slug: "below-reserved", Detail: "20 on hand, 4 of them reserved"},
			{Name: "adjust below zero of a missing level", Method: "POST", Path: base + "/adjustments", Body: `{"warehouse":"MAD1","delta":-1}`, Status: 409, Slug: "below-reserved"},
			{Name: "reserve zero", Method: "POST", Path: base + "/reservations", Body: `{"quantity":0}`, Status: 422, Field: "quantity"},
			{Name: "reserve negative", Method: "POST", Path: base + "/reservations", Body: `{"quantity":-2}`, Status: 422, Field: "quantity"},
			{Name: "reserve fractional", Method: "POST", Path: base + "/reservations", Body: `{"quantity":1.5}`, Status: 400},
			{Name: "reserve too many", Method: "POST", Path: base + "/reservations", Body: `{"quantity":17}`, Status: 409, Slug: "out-of-stock"},
			{Name: "reserve in an empty warehouse", Method: "POST", Path: base + "/reservations", Body: `{"warehouse":"AMS1","quantity":1}`, Status: 409, Slug: "out-of-stock", Detail: "in AMS1"},
			{Name: "reserve where no level is", Method: "POST", Path: base + "/reservations", Body: `{"warehouse":"MAD1","quantity":1}`, Status: 409, Slug: "out-of-stock"},
			{Name: "release without warehouse", Method: "POST", Path: base + "/releases", Body: `{"quantity":1}`, Status: 422, Field: "warehouse"},
			{Name: "release more than reserved", Method: "POST", Path: base + "/releases", Body: `{"warehouse":"BER1","quantity":5}`, Status: 409, Slug: "not-reserved", Detail: "4 are reserved"},
			{Name: "release where no level is", Method: "POST", Path: base + "/releases", Body: `{"warehouse":"MAD1","quantity":1}`, Status: 404},
			{Name: "ship more than reserved", Method: "POST", Path: base + "/shipments", Body: `{"warehouse":"BER1","quantity":5}`, Status: 409, Slug: "not-reserved"},
			{Name: "ship empty body", Method: "POST", Path: base + "/shipments", Body: "", Status: 400},
			{Name: "list bad warehouse", Method: "GET", Path: "/api/inventory/stock?warehouse=Amsterdam", Status: 400, Detail: "warehouse"},
			{Name: "list bad in_stock", Method: "GET", Path: "/api/inventory/stock?in_stock=1", Status: 400, Detail: "in_stock"},
			{Name: "list bad cursor", Method: "GET", Path: "/api/inventory/stock?cursor=abc", Status: 400, Detail: "cursor"},
			{Name: "list bad limit", Method: "GET", Path: "/api/inventory/stock?limit=1000", Status: 400, Detail: "limit"},
			{Name: "warehouses take no parameters", Method: "GET", Path: "/api/inventory/warehouses?limit=1", Status: 400},
		})

		t.Run("failed changes change nothing", func(t *testing.T) {
			var st inventory.ProductStock
			shop.With(t).Get(base).Expect(http.StatusOK).Decode(&st)
			if st.OnHand != 20 || st.Reserved != 4 || st.Available != 16 {
				t.Fatalf("stock after refused changes %+v", st)
			}
		})
	})
}
