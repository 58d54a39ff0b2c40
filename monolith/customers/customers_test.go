package customers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

func newCustomer(email string) map[string]any {
	return map[string]any{
		"email": email, "name": "Ada Lovelace",
		"address": map[string]any{"line1": "Keizersgracht 1", "postal_code": "1015 CJ", "city": "Amsterdam", "country": "nl"},
	}
}

func TestCustomersHTTP(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithConfig(func(c *monolith.Config) { c.MaxBodyBytes = 4096 }))

		t.Run("create, get, update, delete", func(t *testing.T) {
			s := shop.With(t)
			r := s.Post("/api/customers", newCustomer(" Ada@Example.COM ")).Expect(http.StatusCreated)
			var c customers.Customer
			r.Decode(&c)
			if c.ID <= 0 || c.Email != "ada@example.com" || c.Name != "Ada Lovelace" || c.Address.Country != "NL" || c.Version != 1 {
				t.Fatalf("created %+v", c)
			}
			if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/api/customers/%d", c.ID) {
				t.Fatalf("Location = %q", loc)
			}
			var got customers.Customer
			s.Get(fmt.Sprintf("/api/customers/%d", c.ID)).Expect(http.StatusOK).Decode(&got)
			if got.Email != c.Email || got.Address != c.Address || !got.CreatedAt.Equal(c.CreatedAt) {
				t.Fatalf("get = %+v, want %+v", got, c)
			}
			var upd customers.Customer
			s.Patch(fmt.Sprintf("/api/customers/%d", c.ID), map[string]any{
				"name":    "Augusta Ada King",
				"address": map[string]any{"line1": "St James's Square 12", "line2": "Flat 2", "postal_code": "SW1Y 4LB", "city": "London", "country": "GB"},
			}).Expect(http.StatusOK).Decode(&upd)
			if upd.Name != "Augusta Ada King" || upd.Email != "ada@example.com" || upd.Address.City != "London" || upd.Address.Line2 != "Flat 2" || upd.Version != 2 {
				t.Fatalf("updated %+v", upd)
			}
			s.Patch(fmt.Sprintf("/api/customers/%d", c.ID), map[string]any{"email": "ADA@lovelace.example.org"}).Expect(http.StatusOK).Decode(&upd)
			if upd.Email != "ada@lovelace.example.org" || upd.Version != 3 {
				t.Fatalf("email change gave %+v", upd)
			}
			s.Delete(fmt.Sprintf("/api/customers/%d", c.ID)).Expect(http.StatusNoContent)
			s.Get(fmt.Sprintf("/api/customers/%d", c.ID)).Expect(http.StatusNotFound).Problem()
			s.Delete(fmt.Sprintf("/api/customers/%d", c.ID)).Expect(http.StatusNotFound).Problem()
			// The email is free again.
			s.Post("/api/customers", newCustomer("ada@lovelace.example.org")).Expect(http.StatusCreated)
		})

		t.Run("list pages and filters", func(t *testing.T) {
			s := shop.With(t)
			for _, name := range []string{"Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Grace Kelly"} {
				body := newCustomer(strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com")
				body["name"] = name
				s.Post("/api/customers", body).Expect(http.StatusCreated)
			}
			seen := map[int64]bool{}
			path := "/api/customers?limit=2"
			for pages := 0; path != ""; pages++ {
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				var pg customers.Page
				s.Get(path).Expect(http.StatusOK).Decode(&pg)
				for _, c := range pg.Items {
					if seen[c.ID] {
						t.Fatalf("customer %d on two pages", c.ID)
					}
					seen[c.ID] = true
				}
				path = ""
				if pg.NextCursor != "" {
					path = "/api/customers?limit=2&cursor=" + pg.NextCursor
				}
			}
			if len(seen) != 5 {
				t.Fatalf("paged through %d customers, want 5", len(seen))
			}
			tests := []struct{ query, names string }{
				{"q=grace", "Grace Hopper,Grace Kelly"},
				{"q=GRACE&limit=1", "Grace Hopper"},
				{"email=Barbara.Liskov@EXAMPLE.com", "Barbara Liskov"},
				{"email=nobody@example.com", ""},
			}
			for _, tt := range tests {
				var pg customers.Page
				s.Get("/api/customers?" + tt.query).Expect(http.StatusOK).Decode(&pg)
				var names []string
				for _, c := range pg.Items {
					names = append(names, c.Name)
				}
				if strings.Join(names, ",") != tt.names {
					t.Errorf("?%s = %v, want %s", tt.query, names, tt.names)
				}
			}
		})

		bad := func(mut func(map[string]any)) map[string]any {
			b := newCustomer("x@example.com")
			mut(b)
			return b
		}
		addr := func(key string, v any) func(map[string]any) {
			return func(b map[string]any) { b["address"].(map[string]any)[key] = v }
		}
		shop.Run(t, []shoptest.Case{
			{Name: "malformed JSON", Method: "POST", Path: "/api/customers", Body: `{"email": "x@example.com",}`, Status: 400, Detail: "malformed JSON"},
			{Name: "wrong type", Method: "POST", Path: "/api/customers", Body: `{"email": 42}`, Status: 400, Detail: `"email" must be a string`},
			{Name: "address not an object", Method: "POST", Path: "/api/customers", Body: `{"email":"x@example.com","name":"x","address":"Damrak 1"}`, Status: 400, Detail: "address"},
			{Name: "too large", Method: "POST", Path: "/api/customers", Body: `{"name":"` + strings.Repeat("x", 5000) + `"}`, Status: 413},
			{Name: "missing everything", Method: "POST", Path: "/api/customers", Body: `{}`, Status: 422, Field: "address"},
			{Name: "bad email", Method: "POST", Path: "/api/customers", Body: bad(func(b map[string]any) { b["email"] = "not-an-email" }), Status: 422, Field: "email"},
			{Name: "email with display name", Method: "POST", Path: "/api/customers", Body: bad(func(b map[string]any) { b["email"] = "Ada <ada@example.com>" }), Status: 422, Field: "email"},
			{Name: "email without domain dot", Method: "POST", Path: "/api/customers", Body: bad(func(b map[string]any) { b["email"] = "ada@localhost" }), Status: 422, Field: "email"},
			{Name: "empty name", Method: "POST", Path: "/api/customers", Body: bad(func(b map[string]any) { b["name"] = "  " }), Status: 422, Field: "name"},
			{Name: "missing city", Method: "POST", Path: "/api/customers", Body: bad(addr("city", "")), Status: 422, Field: "address.city"},
			{Name: "bad country", Method: "POST", Path: "/api/customers", Body: bad(addr("country", "Netherlands")), Status: 422, Field: "address.country"},
			{Name: "duplicate email", Method: "POST", Path: "/api/customers", Body: newCustomer("GRACE.HOPPER@example.com"), Status: 409, Slug: "duplicate-email"},
			{Name: "get bad id", Method: "GET", Path: "/api/customers/x1", Status: 400},
			{Name: "get unknown", Method: "GET", Path: "/api/customers/999999", Status: 404, Detail: "no customer has id 999999"},
			{Name: "patch empty", Method: "PATCH", Path: "/api/customers/2", Body: `{}`, Status: 422},
			{Name: "patch bad email", Method: "PATCH", Path: "/api/customers/2", Body: `{"email":"nope"}`, Status: 422, Field: "email"},
			{Name: "patch duplicate email", Method: "PATCH", Path: "/api/customers/2", Body: `{"email":"grace.kelly@example.com"}`, Status: 409, Slug: "duplicate-email"},
			{Name: "patch unknown", Method: "PATCH", Path: "/api/customers/999999", Body: `{"name":"x"}`, Status: 404},
			{Name: "delete bad id", Method: "DELETE", Path: "/api/customers/-1", Status: 400},
			{Name: "list bad limit", Method: "GET", Path: "/api/customers?limit=-1", Status: 400, Detail: "limit"},
			{Name: "list bad cursor", Method: "GET", Path: "/api/customers?cursor=eyJ4IjoxfQ", Status: 400, Detail: "cursor"},
			{Name: "list unknown parameter", Method: "GET", Path: "/api/customers?mail=x", Status: 400, Detail: "unknown query parameter"},
		})
	})
}
