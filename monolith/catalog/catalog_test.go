package catalog_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

func TestCatalogHTTP(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithConfig(func(c *monolith.Config) { c.MaxBodyBytes = 4096 }))

		t.Run("create, get, update", func(t *testing.T) {
			s := shop.With(t)
			r := s.Post("/api/catalog/products", map[string]any{
				"sku": " mug-blue-1 ", "name": " Blue mug ", "price_cents": 1590, "currency": "eur",
			}).Expect(http.StatusCreated)
			var p catalog.Product
			r.Decode(&p)
			want := catalog.Product{ID: p.ID, Ref: catalog.ProductRef(p.ID), SKU: "MUG-BLUE-1", Name: "Blue mug", PriceCents: 1590, Currency: "EUR", Active: true, Version: 1}
			if p.ID <= 0 || p.CreatedAt.IsZero() || !p.CreatedAt.Equal(p.UpdatedAt) {
				t.Fatalf("created %+v", p)
			}
			want.CreatedAt, want.UpdatedAt = p.CreatedAt, p.UpdatedAt
			if p != want {
				t.Fatalf("created %+v, want %+v", p, want)
			}
			if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/api/catalog/products/%d", p.ID) {
				t.Fatalf("Location = %q", loc)
			}
			var got catalog.Product
			s.Get(fmt.Sprintf("/api/catalog/products/%d", p.ID)).Expect(http.StatusOK).Decode(&got)
			if !got.CreatedAt.Equal(p.CreatedAt) {
				t.Fatalf("created_at read back as %v, was %v", got.CreatedAt, p.CreatedAt)
			}
			got.CreatedAt, got.UpdatedAt = p.CreatedAt, p.UpdatedAt
			if got != p {
				t.Fatalf("get = %+v, want %+v", got, p)
			}
			var upd catalog.Product
			s.Patch(fmt.Sprintf("/api/catalog/products/%d", p.ID), map[string]any{
				"sku": "mug-blue-1", "price_cents": 1490, "active": false, "description": "Glazed.",
			}).Expect(http.StatusOK).Decode(&upd)
			if upd.PriceCents != 1490 || upd.Active || upd.Description != "Glazed." || upd.Name != "Blue mug" || upd.Version != 2 || upd.SKU != "MUG-BLUE-1" {
				t.Fatalf("updated %+v", upd)
			}
			if !upd.UpdatedAt.After(p.UpdatedAt) && !upd.UpdatedAt.Equal(p.UpdatedAt) {
				t.Fatalf("updated_at went back: %v < %v", upd.UpdatedAt, p.UpdatedAt)
			}
		})

		t.Run("list pages and filters", func(t *testing.T) {
			s := shop.With(t)
			for i, name := range []string{"Red 100% cotton bag", "Green tea", "GREEN mug", "Grinder", "Kettle"} {
				cur := "EUR"
				if i == 4 {
					cur = "USD"
				}
				s.Post("/api/catalog/products", map[string]any{"sku": fmt.Sprintf("LST-%d", i), "name": name, "price_cents": 100 * (i + 1), "currency": cur}).Expect(http.StatusCreated)
			}
			var all []catalog.Product
			path := "/api/catalog/products?limit=2"
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				var pg catalog.Page
				s.Get(path).Expect(http.StatusOK).Decode(&pg)
				if len(pg.Items) > 2 {
					t.Fatalf("page of %d items with limit 2", len(pg.Items))
				}
				all = append(all, pg.Items...)
				if pg.NextCursor == "" {
					break
				}
				path = "/api/catalog/products?limit=2&cursor=" + pg.NextCursor
			}
			if len(all) != 6 { // five here and one from the first subtest
				t.Fatalf("paged through %d products, want 6", len(all))
			}
			for i := 1; i < len(all); i++ {
				if all[i].ID <= all[i-1].ID {
					t.Fatalf("ids out of order: %d after %d", all[i].ID, all[i-1].ID)
				}
			}
			tests := []struct {
				query string
				skus  []string
			}{
				{"q=green", []string{"LST-1", "LST-2"}},
				{"q=100%25", []string{"LST-0"}},
				{"q=_", nil},
				{"sku=lst-3", []string{"LST-3"}},
				{"currency=USD", []string{"LST-4"}},
				{"active=false", []string{"MUG-BLUE-1"}},
				{"active=true&q=gr&limit=1", []string{"LST-1"}},
				{"sku=NOPE", nil},
			}
			for _, tt := range tests {
				var pg catalog.Page
				s.Get("/api/catalog/products?" + tt.query).Expect(http.StatusOK).Decode(&pg)
				var skus []string
				for _, p := range pg.Items {
					skus = append(skus, p.SKU)
				}
				if strings.Join(skus, ",") != strings.Join(tt.skus, ",") {
					t.Errorf("?%s = %v, want %v", tt.query, skus, tt.skus)
				}
				if pg.Items == nil {
					t.Errorf("?%s: items is null, want a list", tt.query)
				}
			}
		})

		big := `{"sku":"BIG-1","name":"` + strings.Repeat("x", 5000) + `","price_cents":1,"currency":"EUR"}`
		shop.Run(t, []shoptest.Case{
			{Name: "malformed JSON", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":`, Status: 400, Detail: "malformed JSON"},
			{Name: "wrong type", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"A1","name":"n","price_cents":"12","currency":"EUR"}`, Status: 400, Detail: `"price_cents" must be an integer`},
			{Name: "fractional price", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"A1","name":"n","price_cents":1.5,"currency":"EUR"}`, Status: 400, Detail: `"price_cents" must be an integer`},
			{Name: "empty body", Method: "POST", Path: "/api/catalog/products", Body: "", Status: 400, Detail: "empty"},
			{Name: "array body", Method: "POST", Path: "/api/catalog/products", Body: `[]`, Status: 400},
			{Name: "not JSON", Method: "POST", Path: "/api/catalog/products", Body: `sku=A1`, Header: []string{"Content-Type", "application/x-www-form-urlencoded"}, Status: 415},
			{Name: "too large", Method: "POST", Path: "/api/catalog/products", Body: big, Status: 413, Slug: "too-large"},
			{Name: "missing fields", Method: "POST", Path: "/api/catalog/products", Body: `{}`, Status: 422, Field: "sku", Slug: "validation"},
			{Name: "missing name", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"A1","price_cents":1,"currency":"EUR"}`, Status: 422, Field: "name"},
			{Name: "negative price", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"A1","name":"n","price_cents":-1,"currency":"EUR"}`, Status: 422, Field: "price_cents"},
			{Name: "unknown currency", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"A1","name":"n","price_cents":1,"currency":"XYZ"}`, Status: 422, Field: "currency"},
			{Name: "bad SKU", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"a b","name":"n","price_cents":1,"currency":"EUR"}`, Status: 422, Field: "sku"},
			{Name: "duplicate SKU", Method: "POST", Path: "/api/catalog/products", Body: `{"sku":"Mug-Blue-1","name":"n","price_cents":1,"currency":"EUR"}`, Status: 409, Slug: "duplicate-sku", Detail: "MUG-BLUE-1"},
			{Name: "get bad id", Method: "GET", Path: "/api/catalog/products/abc", Status: 400, Detail: "positive integer"},
			{Name: "get zero id", Method: "GET", Path: "/api/catalog/products/0", Status: 400},
			{Name: "get unknown", Method: "GET", Path: "/api/catalog/products/999999", Status: 404, Detail: "no product has id 999999"},
			{Name: "patch empty", Method: "PATCH", Path: "/api/catalog/products/1", Body: `{}`, Status: 422, Detail: "at least one"},
			{Name: "patch SKU", Method: "PATCH", Path: "/api/catalog/products/1", Body: `{"sku":"OTHER-1"}`, Status: 422, Field: "sku"},
			{Name: "patch negative price", Method: "PATCH", Path: "/api/catalog/products/1", Body: `{"price_cents":-5}`, Status: 422, Field: "price_cents"},
			{Name: "patch wrong type", Method: "PATCH", Path: "/api/catalog/products/1", Body: `{"active":"yes"}`, Status: 400, Detail: `"active" must be a boolean`},
			{Name: "patch unknown", Method: "PATCH", Path: "/api/catalog/products/999999", Body: `{"name":"x"}`, Status: 404},
			{Name: "list limit zero", Method: "GET", Path: "/api/catalog/products?limit=0", Status: 400, Detail: "limit"},
			{Name: "list limit too big", Method: "GET", Path: "/api/catalog/products?limit=101", Status: 400, Detail: "limit"},
			{Name: "list limit not a number", Method: "GET", Path: "/api/catalog/products?limit=ten", Status: 400, Detail: "limit"},
			{Name: "list bad cursor", Method: "GET", Path: "/api/catalog/products?cursor=garbage", Status: 400, Detail: "cursor"},
			{Name: "list unknown parameter", Method: "GET", Path: "/api/catalog/products?actve=true", Status: 400, Detail: `unknown query parameter "actve"`},
			{Name: "list bad active", Method: "GET", Path: "/api/catalog/products?active=maybe", Status: 400, Detail: "active"},
			{Name: "list bad currency", Method: "GET", Path: "/api/catalog/products?currency=XYZ", Status: 400, Detail: "currency"},
			{Name: "list long query", Method: "GET", Path: "/api/catalog/products?q=" + strings.Repeat("a", 101), Status: 400, Detail: "q must be at most"},
			{Name: "wrong method", Method: "DELETE", Path: "/api/catalog/products/1", Status: 405},
		})

		t.Run("cursor of another list", func(t *testing.T) {
			s := shop.With(t)
			s.CreateCustomer("a@example.com")
			s.CreateCustomer("b@example.com")
			var pg struct {
				NextCursor string `json:"next_cursor"`
			}
			s.Get("/api/customers?limit=1").Expect(http.StatusOK).Decode(&pg)
			if pg.NextCursor == "" {
				t.Fatal("no customers cursor")
			}
			s.Get("/api/catalog/products?cursor=" + pg.NextCursor).Expect(http.StatusBadRequest).Problem()
		})
	})
}
