package monolith_test

import (
	"encoding/json"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// spec is the parsed OpenAPI document.
type spec struct {
	doc map[string]any
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "api", "shop.openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("shop.openapi.yaml: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v, want 3.1.0", doc["openapi"])
	}
	return spec{doc: doc}
}

var httpMethods = []string{"get", "put", "post", "patch", "delete", "head", "options"}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// operations returns "METHOD /echo/:path" for every operation in the spec.
func (s spec) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for p, item := range s.doc["paths"].(map[string]any) {
		for _, m := range httpMethods {
			if op, ok := item.(map[string]any)[m].(map[string]any); ok {
				out[strings.ToUpper(m)+" "+pathParam.ReplaceAllString(p, ":$1")] = op
			}
		}
	}
	return out
}

// resolve follows a local $ref.
func (s spec) resolve(node map[string]any) map[string]any {
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		var cur any = s.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		next := cur.(map[string]any)
		// Keywords beside a $ref (3.1 allows description) add nothing to
		// validate.
		node = next
	}
}

// validate checks a decoded JSON value against a schema, supporting the
// keywords the document uses.
func (s spec) validate(schema map[string]any, v any, at string) []string {
	schema = s.resolve(schema)
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if types := schemaTypes(schema["type"]); len(types) > 0 && !slices.Contains(types, jsonType(v)) &&
		!(jsonType(v) == "integer" && slices.Contains(types, "number")) {
		fail("is %s, want %v", jsonType(v), types)
		return errs
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return equalJSON(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if c, ok := schema["const"]; ok && !equalJSON(c, v) {
		fail("%v is not %v", v, c)
	}
	if not, ok := schema["not"].(map[string]any); ok && len(s.validate(not, v, at)) == 0 {
		fail("%v matches a schema it must not", v)
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := x[r.(string)]; !ok {
				fail("lacks required %q", r)
			}
		}
		if n, ok := schema["minProperties"].(int); ok && len(x) < n {
			fail("has %d properties, want at least %d", len(x), n)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, s.validate(ps, x[k], at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("has undocumented property %q", k)
				}
			case map[string]any:
				errs = append(errs, s.validate(ap, x[k], at+"."+k)...)
			}
		}
	case []any:
		if n, ok := schema["minItems"].(int); ok && len(x) < n {
			fail("has %d items, want at least %d", len(x), n)
		}
		if n, ok := schema["maxItems"].(int); ok && len(x) > n {
			fail("has %d items, want at most %d", len(x), n)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range x {
				errs = append(errs, s.validate(items, e, at+"["+strconv.Itoa(i)+"]")...)
			}
		}
	case string:
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			fail("%q does not match %s", x, p)
		}
		if n, ok := schema["maxLength"].(int); ok && len([]rune(x)) > n {
			fail("is longer than %d", n)
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				fail("%q is not an RFC 3339 time", x)
			}
		}
	case float64:
		if m, ok := toFloat(schema["minimum"]); ok && x < m {
			fail("%v is below the minimum %v", x, m)
		}
		if m, ok := toFloat(schema["maximum"]); ok && x > m {
			fail("%v is above the maximum %v", x, m)
		}
	}
	return errs
}

func schemaTypes(t any) []string {
	switch t := t.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, e.(string))
		}
		return out
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func equalJSON(specValue, v any) bool {
	if f, ok := toFloat(specValue); ok {
		g, ok := v.(float64)
		return ok && f == g
	}
	return specValue == v
}

// routes returns "METHOD /path" for every route the shop serves.
func routes(e *echo.Echo) []string {
	var out []string
	for _, r := range e.Routes() {
		if !slices.Contains(httpMethods, strings.ToLower(r.Method)) {
			continue // echo's internal not-found routes
		}
		out = append(out, r.Method+" "+r.Path)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := loadSpec(t)
	shop := shoptest.New(t, dbtest.SQLiteDSN(t))
	served := routes(shop.Handler().(*echo.Echo))
	ops := s.operations()
	var documented []string
	for k := range ops {
		documented = append(documented, k)
	}
	sort.Strings(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/api/shop.openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("docs/api/shop.openapi.yaml documents %s, which the shop does not serve", d)
		}
	}
	ids := map[string]bool{}
	for k, op := range ops {
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] {
			t.Errorf("%s: operationId %q is missing or not unique", k, id)
		}
		ids[id] = true
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes served: %v", len(served), served)
	}
}

// exchange is one request of the scenario, with the route template it hits.
type exchange struct {
	route  string // "METHOD /template"
	path   string
	body   any
	status int
}

// TestOpenAPIDescribesResponses runs a scenario that calls every operation,
// successfully and not, and validates each response against the document:
// its status must be documented for the operation, and its body must match
// the schema of its content type, with no undocumented fields.
func TestOpenAPIDescribesResponses(t *testing.T) {
	s := loadSpec(t)
	ops := s.operations()
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		newCustomer := map[string]any{"email": "spec@example.com", "name": "Spec Test", "address": map[string]any{"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"}}
		order := func(sku string, qty int) map[string]any {
			return map[string]any{"customer_id": 2, "lines": []any{map[string]any{"sku": sku, "quantity": qty}}}
		}
		scenario := []exchange{
			{"GET /healthz", "/healthz", nil, 200},
			{"GET /readyz", "/readyz", nil, 200},
			{"GET /metrics", "/metrics", nil, 200},
			{"GET /api/catalog/products", "/api/catalog/products?limit=3&active=true", nil, 200},
			{"GET /api/catalog/products", "/api/catalog/products?limit=0", nil, 400},
			{"POST /api/catalog/products", "/api/catalog/products", map[string]any{"sku": "SPEC-1", "name": "Spec", "price_cents": 100, "currency": "EUR"}, 201},
			{"POST /api/catalog/products", "/api/catalog/products", map[string]any{"sku": "SPEC-1", "name": "Spec", "price_cents": 100, "currency": "EUR"}, 409},
			{"POST /api/catalog/products", "/api/catalog/products", map[string]any{"sku": "", "price_cents": -1}, 422},
			{"POST /api/catalog/products", "/api/catalog/products", `{"sku":`, 400},
			{"GET /api/catalog/products/:id", "/api/catalog/products/1", nil, 200},
			{"GET /api/catalog/products/:id", "/api/catalog/products/99999", nil, 404},
			{"PATCH /api/catalog/products/:id", "/api/catalog/products/51", map[string]any{"price_cents": 120}, 200},
			{"GET /api/customers", "/api/customers?limit=2", nil, 200},
			{"POST /api/customers", "/api/customers", newCustomer, 201},
			{"GET /api/customers/:id", "/api/customers/21", nil, 200},
			{"PATCH /api/customers/:id", "/api/customers/21", map[string]any{"name": "Spec Tested"}, 200},
			{"PATCH /api/customers/:id", "/api/customers/21", map[string]any{"email": "anna.devries@example.nl"}, 409},
			{"DELETE /api/customers/:id", "/api/customers/21", nil, 204},
			{"DELETE /api/customers/:id", "/api/customers/21", nil, 404},
			{"GET /api/inventory/warehouses", "/api/inventory/warehouses", nil, 200},
			{"GET /api/inventory/stock", "/api/inventory/stock?limit=5&warehouse=AMS1", nil, 200},
			{"GET /api/inventory/stock", "/api/inventory/stock?in_stock=maybe", nil, 400},
			{"GET /api/inventory/stock/:ref", "/api/inventory/stock/P-000001", nil, 200},
			{"GET /api/inventory/stock/:ref", "/api/inventory/stock/P-000051", nil, 404},
			{"POST /api/inventory/stock/:ref/adjustments", "/api/inventory/stock/P-000051/adjustments", map[string]any{"warehouse": "AMS1", "delta": 5, "reason": "spec"}, 200},
			{"POST /api/inventory/stock/:ref/adjustments", "/api/inventory/stock/P-000051/adjustments", map[string]any{"warehouse": "LON1", "delta": 5}, 422},
			{"POST /api/inventory/stock/:ref/reservations", "/api/inventory/stock/P-000051/reservations", map[string]any{"quantity": 2, "reference": "spec"}, 200},
			{"POST /api/inventory/stock/:ref/reservations", "/api/inventory/stock/P-000051/reservations", map[string]any{"quantity": 4}, 409},
			{"POST /api/inventory/stock/:ref/releases", "/api/inventory/stock/P-000051/releases", map[string]any{"warehouse": "AMS1", "quantity": 1}, 200},
			{"POST /api/inventory/stock/:ref/shipments", "/api/inventory/stock/P-000051/shipments", map[string]any{"warehouse": "AMS1", "quantity": 1}, 200},
			{"POST /api/inventory/stock/:ref/shipments", "/api/inventory/stock/P-000051/shipments", map[string]any{"warehouse": "BER1", "quantity": 1}, 404},
			{"POST /api/orders", "/api/orders", order("COF-ETH-250", 1), 201},
			// Order 2 is placed before any refused order, which on
			// Postgres uses up an id when it rolls back.
			{"POST /api/orders", "/api/orders", order("COF-COL-250", 2), 201},
			{"POST /api/orders", "/api/orders", order("NOPE-1", 1), 422},
			{"POST /api/orders", "/api/orders", order("SPEC-1", 5), 409},
			{"GET /api/orders", "/api/orders?customer_id=2&status=10", nil, 200},
			{"GET /api/orders/:id", "/api/orders/1", nil, 200},
			{"POST /api/orders/:id/pay", "/api/orders/1/pay", nil, 200},
			{"POST /api/orders/:id/pay", "/api/orders/1/pay", nil, 409},
			{"POST /api/orders/:id/ship", "/api/orders/1/ship", nil, 200},
			{"POST /api/orders/:id/cancel", "/api/orders/1/cancel", nil, 409},
			{"POST /api/orders/:id/cancel", "/api/orders/2/cancel", nil, 200},
			{"POST /api/orders/:id/ship", "/api/orders/abc/ship", nil, 400},
			{"POST /api/payments/authorizations", "/api/payments/authorizations", map[string]any{"customer_id": 2, "amount_cents": 500, "idempotency_key": "spec/1"}, 201},
			{"POST /api/payments/authorizations", "/api/payments/authorizations", map[string]any{"customer_id": 2, "amount_cents": 900, "idempotency_key": "spec/1"}, 409},
			{"POST /api/payments/authorizations", "/api/payments/authorizations", map[string]any{"customer_id": 2, "amount_cents": 99999999, "idempotency_key": "spec/2"}, 422},
			{"POST /api/payments/authorizations", "/api/payments/authorizations", `{"customer_id":`, 400},
			{"GET /api/payments/authorizations/:id", "/api/payments/authorizations/1", nil, 200},
			{"GET /api/payments/authorizations/:id", "/api/payments/authorizations/99999", nil, 404},
			{"POST /api/payments/authorizations/:id/capture", "/api/payments/authorizations/1/capture", nil, 200},
			{"POST /api/payments/authorizations/:id/void", "/api/payments/authorizations/1/void", nil, 409},
			{"POST /api/payments/authorizations/:id/void", "/api/payments/authorizations/2/void", nil, 200},
			{"POST /api/payments/authorizations/:id/capture", "/api/payments/authorizations/2/capture", nil, 409},
			{"POST /api/payments/voids", "/api/payments/voids", map[string]any{"idempotency_key": "spec/3"}, 200},
			{"POST /api/payments/voids", "/api/payments/voids", map[string]any{"idempotency_key": ""}, 422},
			{"GET /api/payments/accounts/:id", "/api/payments/accounts/2", nil, 200},
			{"GET /api/payments/accounts/:id", "/api/payments/accounts/99999", nil, 404},
			{"PUT /api/payments/accounts/:id", "/api/payments/accounts/2", map[string]any{"credit_limit_cents": 250000}, 200},
			{"PUT /api/payments/accounts/:id", "/api/payments/accounts/2", map[string]any{"credit_limit_cents": -1}, 422},
		}
		covered := map[string]bool{}
		for _, ex := range scenario {
			op, ok := ops[ex.route]
			if !ok {
				t.Fatalf("scenario route %s is not in the document", ex.route)
			}
			method, _, _ := strings.Cut(ex.route, " ")
			r := shop.With(t).Do(method, ex.path, ex.body).Expect(ex.status)
			covered[ex.route] = true
			where := fmt.Sprintf("%s %s → %d", method, ex.path, r.Status)
			resp, ok := op["responses"].(map[string]any)[strconv.Itoa(r.Status)].(map[string]any)
			if !ok {
				t.Errorf("%s: status %d is not documented", where, r.Status)
				continue
			}
			resp = s.resolve(resp)
			content, _ := resp["content"].(map[string]any)
			if len(content) == 0 {
				if len(r.Body) != 0 {
					t.Errorf("%s: documented without a body, got %s", where, r.Body)
				}
				continue
			}
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			media, ok := content[mt].(map[string]any)
			if !ok {
				t.Errorf("%s: content type %q is not documented", where, mt)
				continue
			}
			if mt == "text/plain" {
				continue
			}
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			for _, e := range s.validate(media["schema"].(map[string]any), v, "body") {
				t.Errorf("%s: %s", where, e)
			}
			// Requests that succeed must match the documented request
			// schema too.
			if rb, ok := op["requestBody"].(map[string]any); ok && ex.status < 300 {
				var body any
				b, _ := json.Marshal(ex.body)
				_ = json.Unmarshal(b, &body)
				reqSchema := rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
				for _, e := range s.validate(reqSchema, body, "request") {
					t.Errorf("%s: %s", where, e)
				}
			}
		}
		for route := range ops {
			if !covered[route] {
				t.Errorf("the scenario never calls %s", route)
			}
		}
	})
}

func TestSchemaValidator(t *testing.T) {
	s := spec{doc: map[string]any{"components": map[string]any{"schemas": map[string]any{
		"Thing": map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"id", "when"},
			"properties": map[string]any{
				"id":   map[string]any{"type": "integer", "minimum": 1},
				"when": map[string]any{"type": []any{"string", "null"}, "format": "date-time"},
				"code": map[string]any{"type": "string", "pattern": "^[A-Z]{3}$"},
				"tags": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []any{"a", "b"}}},
				"n":    map[string]any{"type": "integer", "not": map[string]any{"const": 0}},
			},
		},
	}}}}
	ref := map[string]any{"$ref": "#/components/schemas/Thing"}
	tests := []struct {
		json string
		want string
	}{
		{`{"id":1,"when":null,"code":"ABC","tags":["a"],"n":2}`, ""},
		{`{"id":1,"when":"2026-01-05T08:00:00Z"}`, ""},
		{`{"id":0,"when":null}`, "below the minimum"},
		{`{"id":1.5,"when":null}`, "is number"},
		{`{"when":null}`, `lacks required "id"`},
		{`{"id":1,"when":"yesterday"}`, "not an RFC 3339 time"},
		{`{"id":1,"when":null,"extra":true}`, `undocumented property "extra"`},
		{`{"id":1,"when":null,"code":"abcd"}`, "does not match"},
		{`{"id":1,"when":null,"tags":["c"]}`, "is not one of"},
		{`{"id":1,"when":null,"n":0}`, "matches a schema it must not"},
		{`[]`, "is array"},
	}
	for _, tt := range tests {
		var v any
		if err := json.Unmarshal([]byte(tt.json), &v); err != nil {
			t.Fatal(err)
		}
		errs := strings.Join(s.validate(ref, v, "body"), "; ")
		if (tt.want == "") != (errs == "") || !strings.Contains(errs, tt.want) {
			t.Errorf("validate(%s) = %q, want %q", tt.json, errs, tt.want)
		}
	}
}
