package monolith_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// hostileText is one text input a client can send: a query parameter, a path
// parameter or a JSON field, and the answer the shop owes it.
type hostileText struct {
	method, path string
	// body is sent raw, so that it can hold what json.Marshal never writes
	// (invalid UTF-8).
	body   string
	status int
	slug   string
	// field is the invalid field a 422 must name.
	field string
}

// hostileTexts lists every text input of the shop's API (docs/api/
// shop.openapi.yaml) with a NUL in it, and samples of invalid UTF-8 and
// malformed percent-escapes. Query and path parameters get 400, JSON fields
// 422 naming the field.
func hostileTexts() []hostileText {
	var cases []hostileText
	queries := map[string][]string{
		"/api/catalog/products": {"q", "sku", "currency", "cursor"},
		"/api/customers":        {"email", "q", "cursor"},
		"/api/orders":           {"status", "cursor"},
		"/api/inventory/stock":  {"warehouse", "cursor"},
	}
	for path, names := range queries {
		for _, name := range names {
			cases = append(cases, hostileText{method: http.MethodGet, path: path + "?" + name + "=a%00b", status: 400, slug: "bad-request"})
		}
	}
	cases = append(cases,
		// SQLite cut the LIKE pattern at the NUL: "%" matched every row.
		hostileText{method: http.MethodGet, path: "/api/catalog/products?q=%00", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/customers?q=%00", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/catalog/products?q=%ff", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/customers?q=caf%C3", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/catalog/products?sku=%zz", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/catalog/products?cursor=%%%", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/orders?status=paid%", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/customers?q=a;b", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/inventory/warehouses?%zz", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/inventory/stock/P-000001%00", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodGet, path: "/api/inventory/stock/P-%ff", status: 400, slug: "bad-request"},
	)
	bodies := []struct {
		method, path, body, field string
	}{
		{http.MethodPost, "/api/catalog/products", `{"sku":"NUL-1","name":"a\u0000b","price_cents":100,"currency":"EUR"}`, "name"},
		{http.MethodPost, "/api/catalog/products", `{"sku":"NUL-\u0000","name":"ab","price_cents":100,"currency":"EUR"}`, "sku"},
		{http.MethodPost, "/api/catalog/products", `{"sku":"NUL-2","name":"ab","description":"\u0000","price_cents":100,"currency":"EUR"}`, "description"},
		{http.MethodPost, "/api/catalog/products", `{"sku":"NUL-3","name":"ab","price_cents":100,"currency":"EU\u0000"}`, "currency"},
		{http.MethodPatch, "/api/catalog/products/1", `{"name":"a\u0000b"}`, "name"},
		{http.MethodPatch, "/api/catalog/products/1", `{"description":"x\u0000"}`, "description"},
		{http.MethodPost, "/api/customers", `{"email":"nul@example.com","name":"a\u0000b"}`, "name"},
		{http.MethodPost, "/api/customers", `{"email":"nul\u0000@example.com","name":"ab"}`, "email"},
		{http.MethodPost, "/api/customers", `{"email":"nul2@example.com","name":"ab","address":{"line1":"\u0000","postal_code":"1012","city":"A","country":"NL"}}`, "address.line1"},
		{http.MethodPatch, "/api/customers/1", `{"name":"a\u0000b"}`, "name"},
		{http.MethodPatch, "/api/customers/1", `{"address":{"line1":"Damrak 1","line2":"\u0000","postal_code":"1012","city":"A","country":"NL"}}`, "address.line2"},
		{http.MethodPost, "/api/orders", `{"customer_id":1,"lines":[{"sku":"COF-ETH-250","quantity":1},{"sku":"a\u0000b","quantity":1}]}`, "lines[1].sku"},
		{http.MethodPost, "/api/inventory/stock/P-000001/adjustments", `{"warehouse":"AMS1","delta":1,"reason":"a\u0000b"}`, "reason"},
		{http.MethodPost, "/api/inventory/stock/P-000001/adjustments", `{"warehouse":"AMS\u0000","delta":1,"reason":"ab"}`, "warehouse"},
		{http.MethodPost, "/api/inventory/stock/P-000001/reservations", `{"quantity":1,"reference":"a\u0000b"}`, "reference"},
		{http.MethodPost, "/api/inventory/stock/P-000001/releases", `{"quantity":1,"reference":"a\u0000b"}`, "reference"},
		{http.MethodPost, "/api/inventory/stock/P-000001/shipments", `{"quantity":1,"reference":"a\u0000b"}`, "reference"},
		{http.MethodPost, "/api/payments/authorizations", `{"customer_id":1,"amount_cents":1,"idempotency_key":"a\u0000b"}`, "idempotency_key"},
		{http.MethodPost, "/api/payments/voids", `{"idempotency_key":"a\u0000b"}`, "idempotency_key"},
		{http.MethodPut, "/api/payments/accounts/1", `{"credit_limit_cents":1,"note":"a\u0000b"}`, "note"},
	}
	for _, b := range bodies {
		cases = append(cases, hostileText{method: b.method, path: b.path, body: b.body, status: 422, slug: "validation", field: b.field})
	}
	cases = append(cases,
		hostileText{method: http.MethodPost, path: "/api/customers", body: "{\"email\":\"utf8@example.com\",\"name\":\"a\xffb\"}", status: 400, slug: "bad-request"},
		hostileText{method: http.MethodPatch, path: "/api/catalog/products/1", body: "{\"name\":\"caf\xc3\"}", status: 400, slug: "bad-request"},
	)
	return cases
}

// TestChaosTextInput sends NUL characters, invalid UTF-8 and malformed
// percent-escapes in every text input of the shop. Postgres refuses NUL in
// text (SQLSTATE 22021), which gave 500s, and SQLite cut a LIKE pattern at
// the NUL, so that ?q=%00 matched every product; Go's query parser dropped
// malformed escapes without a word.
func TestChaosTextInput(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		for _, c := range hostileTexts() {
			t.Run(c.method+" "+c.path+" "+c.field, func(t *testing.T) {
				var body any
				if c.body != "" {
					body = c.body
				}
				r := shop.With(t).Do(c.method, c.path, body)
				tried := fmt.Sprintf("%s %s", c.method, c.path)
				if c.body != "" {
					tried += fmt.Sprintf(" with body %q", c.body)
				}
				expected := fmt.Sprintf("%d %s", c.status, c.slug)
				if c.field != "" {
					expected += " naming field " + c.field
				}
				saw := fmt.Sprintf("%d %s", r.Status, r.Body)
				ok := r.Status == c.status && strings.Contains(r.Header.Get("Content-Type"), "problem+json")
				if ok {
					p := r.Problem()
					ok = strings.HasSuffix(p.Type, "#"+c.slug)
					if c.field != "" {
						named := false
						for _, f := range p.Errors {
							named = named || f.Field == c.field
						}
						ok = ok && named
					}
				}
				chaostest.Report(t, ok, tried, expected, saw)
			})
		}
	})
}

// TestHostileTextsCoverTheSpec checks that hostileTexts has a case for every
// string query parameter and every request body in docs/api/
// shop.openapi.yaml, so that an endpoint added to the API is attacked too.
func TestHostileTextsCoverTheSpec(t *testing.T) {
	s := loadSpec(t)
	covered := map[string]bool{}
	for _, c := range hostileTexts() {
		path, query, _ := strings.Cut(c.path, "?")
		for op := range s.operations() {
			method, template, _ := strings.Cut(op, " ")
			if method != c.method || !matchesTemplate(template, path) {
				continue
			}
			if c.body != "" {
				covered[op+" body"] = true
			}
			if name, _, ok := strings.Cut(query, "="); ok {
				covered[op+" ?"+name] = true
			}
		}
	}
	for op, node := range s.operations() {
		var want []string
		if node["requestBody"] != nil {
			want = append(want, op+" body")
		}
		for _, p := range asList(node["parameters"]) {
			param := s.resolve(p.(map[string]any))
			schema, _ := param["schema"].(map[string]any)
			if param["in"] == "query" && schema != nil && slices.Contains(schemaTypes(s.resolve(schema)["type"]), "string") {
				want = append(want, op+" ?"+param["name"].(string))
			}
		}
		for _, w := range want {
			if !covered[w] {
				t.Errorf("no hostile text case for %s", w)
			}
		}
	}
}

// matchesTemplate reports whether path fits an echo route template such as
// /api/catalog/products/:id.
func matchesTemplate(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if !strings.HasPrefix(ts[i], ":") && ts[i] != ps[i] {
			return false
		}
	}
	return true
}
