// Package contract is the inventory's HTTP contract as an executable test
// suite: the paths, JSON shapes, status codes and problem types of
// /api/inventory that the monolith's inventory module serves, and that the
// extracted inventory service's legacy facade must serve the same way so
// that the proxy can move traffic without clients noticing.
//
// The same Run runs against both (monolith/inventory/contract_test.go and
// extracted/inventory/contract_test.go). It talks HTTP only; the target's
// Product hook creates what each side needs for a new product.
package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Target is a server of the inventory contract.
type Target struct {
	// URL is the base URL; the contract is under URL + "/api/inventory".
	URL string
	// Client sends the requests. If nil, http.DefaultClient.
	Client *http.Client
	// Product makes a new product known to the target, without stock, and
	// returns its legacy reference (P-000042). Each call makes another.
	Product func(t *testing.T) string
	// MaxBodyBytes is the target's body limit. If zero, 1 MiB.
	MaxBodyBytes int
}

// Level is a stock level as the contract has it.
type Level struct {
	ProductRef string    `json:"product_ref"`
	Warehouse  string    `json:"warehouse"`
	OnHand     int       `json:"on_hand"`
	Reserved   int       `json:"reserved"`
	Available  int       `json:"qty_available"`
	Version    int       `json:"version"`
	UpdatedAt  time.Time `json:"updated_at"`
}

type productStock struct {
	ProductRef string  `json:"product_ref"`
	OnHand     int     `json:"on_hand"`
	Reserved   int     `json:"reserved"`
	Available  int     `json:"qty_available"`
	Warehouses []Level `json:"warehouses"`
}

type page struct {
	Items      []Level `json:"items"`
	NextCursor string  `json:"next_cursor"`
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

type client struct {
	t      *testing.T
	target Target
}

type response struct {
	status int
	header http.Header
	body   []byte
	req    string
}

func (c client) do(method, path string, body any) response {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.target.URL+"/api/inventory"+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.target.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data, req: method + " " + path}
}

// ok expects a 200 with a JSON body and decodes it into v.
func (c client) ok(r response, v any) {
	c.t.Helper()
	if r.status != http.StatusOK {
		c.t.Fatalf("%s: status %d, want 200; body %s", r.req, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		c.t.Fatalf("%s: decode %s: %v", r.req, r.body, err)
	}
}

// problem expects a problem document of status and, when slug is not
// empty, of that type; fields lists the invalid fields a 422 names.
func (c client) problem(r response, status int, slug string, fields ...string) problem {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("%s: status %d, want %d; body %s", r.req, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		c.t.Fatalf("%s: Content-Type %q, want application/problem+json", r.req, ct)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		c.t.Fatalf("%s: decode problem %s: %v", r.req, r.body, err)
	}
	if p.Status != status || p.Title == "" || p.Detail == "" {
		c.t.Fatalf("%s: incomplete problem %s", r.req, r.body)
	}
	if slug != "" && !strings.HasSuffix(p.Type, "#"+slug) {
		c.t.Fatalf("%s: problem type %q, want one ending in #%s", r.req, p.Type, slug)
	}
	if len(fields) > 0 {
		var got []string
		for _, f := range p.Errors {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, fields) {
			c.t.Fatalf("%s: invalid fields %v, want %v", r.req, got, fields)
		}
	}
	return p
}

func (c client) adjust(ref, wh string, delta int) Level {
	c.t.Helper()
	var l Level
	c.ok(c.do(http.MethodPost, "/stock/"+ref+"/adjustments", map[string]any{"warehouse": wh, "delta": delta, "reason": "contract"}), &l)
	return l
}

func (c client) move(ref, op string, body map[string]any) response {
	c.t.Helper()
	return c.do(http.MethodPost, "/stock/"+ref+"/"+op, body)
}

func expectLevel(t *testing.T, what string, got Level, ref, wh string, onHand, reserved, version int) {
	t.Helper()
	if got.ProductRef != ref || got.Warehouse != wh || got.OnHand != onHand || got.Reserved != reserved ||
		got.Available != onHand-reserved || got.Version != version || got.UpdatedAt.IsZero() {
		t.Fatalf("%s: level %+v, want %s/%s on_hand %d reserved %d qty_available %d version %d", what, got, ref, wh, onHand, reserved, onHand-reserved, version)
	}
}

// Run runs the contract against target.
func Run(t *testing.T, target Target) {
	if target.MaxBodyBytes == 0 {
		target.MaxBodyBytes = 1 << 20
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, client{t: t, target: target}, target)
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, c client, target Target)
}{
	{"warehouses", func(t *testing.T, c client, _ Target) {
		var ws struct {
			Items []struct{ Code, Name, Country string } `json:"items"`
		}
		c.ok(c.do(http.MethodGet, "/warehouses", nil), &ws)
		var codes []string
		for _, w := range ws.Items {
			if w.Name == "" || len(w.Country) != 2 {
				t.Errorf("warehouse %+v lacks a name or country", w)
			}
			codes = append(codes, w.Code)
		}
		if !slices.Equal(codes, []string{"AMS1", "BER1", "MAD1"}) {
			t.Fatalf("warehouse codes %v", codes)
		}
		c.problem(c.do(http.MethodGet, "/warehouses?page=2", nil), http.StatusBadRequest, "bad-request")
	}},
	{"adjust creates and changes a level", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		expectLevel(t, "first delivery", c.adjust(ref, "ams1", 10), ref, "AMS1", 10, 0, 1)
		expectLevel(t, "second delivery", c.adjust(ref, "AMS1", 5), ref, "AMS1", 15, 0, 2)
		expectLevel(t, "write-off", c.adjust(ref, "AMS1", -3), ref, "AMS1", 12, 0, 3)
		expectLevel(t, "other warehouse", c.adjust(ref, "BER1", 4), ref, "BER1", 4, 0, 1)
		c.problem(c.do(http.MethodPost, "/stock/"+ref+"/adjustments", map[string]any{"warehouse": "MAD1", "delta": -1}), http.StatusConflict, "below-reserved")
	}},
	{"adjust below reserved", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		c.adjust(ref, "AMS1", 10)
		var l Level
		c.ok(c.move(ref, "reservations", map[string]any{"warehouse": "AMS1", "quantity": 8, "reference": "order/c1"}), &l)
		expectLevel(t, "reserved", l, ref, "AMS1", 10, 8, 2)
		c.problem(c.do(http.MethodPost, "/stock/"+ref+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": -3}), http.StatusConflict, "below-reserved")
		expectLevel(t, "write-off within available", c.adjust(ref, "AMS1", -2), ref, "AMS1", 8, 8, 3)
	}},
	{"get stock", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		c.problem(c.do(http.MethodGet, "/stock/"+ref, nil), http.StatusNotFound, "not-found")
		c.adjust(ref, "MAD1", 7)
		c.adjust(ref, "AMS1", 3)
		c.ok(c.move(ref, "reservations", map[string]any{"warehouse": "MAD1", "quantity": 2}), &Level{})
		var st productStock
		c.ok(c.do(http.MethodGet, "/stock/"+ref, nil), &st)
		if st.ProductRef != ref || st.OnHand != 10 || st.Reserved != 2 || st.Available != 8 || len(st.Warehouses) != 2 {
			t.Fatalf("stock %+v", st)
		}
		expectLevel(t, "AMS1", st.Warehouses[0], ref, "AMS1", 3, 0, 1)
		expectLevel(t, "MAD1", st.Warehouses[1], ref, "MAD1", 7, 2, 2)
		for _, bad := range []string{"P-42", "42", "P-0000042", "p-000042"} {
			c.problem(c.do(http.MethodGet, "/stock/"+bad, nil), http.StatusBadRequest, "bad-request")
		}
	}},
	{"reserve, release and ship", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		c.adjust(ref, "AMS1", 4)
		c.adjust(ref, "BER1", 9)
		var l Level
		c.ok(c.move(ref, "reservations", map[string]any{"quantity": 5, "reference": "order/c2"}), &l)
		expectLevel(t, "reserve anywhere picks the most available", l, ref, "BER1", 9, 5, 2)
		c.ok(c.move(ref, "reservations", map[string]any{"warehouse": "ams1", "quantity": 4, "reference": "order/c3"}), &l)
		expectLevel(t, "reserve in a warehouse", l, ref, "AMS1", 4, 4, 2)
		c.problem(c.move(ref, "reservations", map[string]any{"warehouse": "AMS1", "quantity": 1}), http.StatusConflict, "out-of-stock")
		c.problem(c.move(ref, "reservations", map[string]any{"quantity": 5}), http.StatusConflict, "out-of-stock")
		c.ok(c.move(ref, "releases", map[string]any{"warehouse": "BER1", "quantity": 2, "reference": "order/c2"}), &l)
		expectLevel(t, "release", l, ref, "BER1", 9, 3, 3)
		c.problem(c.move(ref, "releases", map[string]any{"warehouse": "BER1", "quantity": 4}), http.StatusConflict, "not-reserved")
		c.ok(c.move(ref, "shipments", map[string]any{"warehouse": "BER1", "quantity": 3, "reference": "order/c2"}), &l)
		expectLevel(t, "ship", l, ref, "BER1", 6, 0, 4)
		c.problem(c.move(ref, "shipments", map[string]any{"warehouse": "BER1", "quantity": 1}), http.StatusConflict, "not-reserved")
		c.problem(c.move(ref, "shipments", map[string]any{"warehouse": "MAD1", "quantity": 1}), http.StatusNotFound, "not-found")
		c.problem(c.move(ref, "releases", map[string]any{"warehouse": "MAD1", "quantity": 1}), http.StatusNotFound, "not-found")
	}},
	{"unknown product and warehouse", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		const nobody = "P-987654"
		c.problem(c.do(http.MethodPost, "/stock/"+nobody+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": 1}), http.StatusUnprocessableEntity, "unknown-product")
		c.problem(c.do(http.MethodPost, "/stock/"+ref+"/adjustments", map[string]any{"warehouse": "XYZ9", "delta": 1}), http.StatusUnprocessableEntity, "unknown-warehouse")
		c.problem(c.do(http.MethodPost, "/stock/"+nobody+"/adjustments", map[string]any{"warehouse": "XYZ9", "delta": 1}), http.StatusUnprocessableEntity, "unknown-warehouse")
		c.problem(c.move(nobody, "reservations", map[string]any{"quantity": 1}), http.StatusConflict, "out-of-stock")
		c.adjust(ref, "AMS1", 1)
		c.problem(c.move(ref, "reservations", map[string]any{"warehouse": "XYZ9", "quantity": 1}), http.StatusConflict, "out-of-stock")
		c.problem(c.move(ref, "releases", map[string]any{"warehouse": "XYZ9", "quantity": 1}), http.StatusNotFound, "not-found")
		c.problem(c.move(nobody, "shipments", map[string]any{"warehouse": "AMS1", "quantity": 1}), http.StatusNotFound, "not-found")
		c.problem(c.do(http.MethodGet, "/stock/"+nobody, nil), http.StatusNotFound, "not-found")
	}},
	{"validation", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		long := strings.Repeat("x", 201)
		tests := []struct {
			op     string
			body   map[string]any
			fields []string
		}{
			{"adjustments", map[string]any{"warehouse": "AMS1", "delta": 0}, []string{"delta"}},
			{"adjustments", map[string]any{"delta": 1}, []string{"warehouse"}},
			{"adjustments", map[string]any{"warehouse": "AMS", "delta": 1}, []string{"warehouse"}},
			{"adjustments", map[string]any{"warehouse": "AMS1", "delta": 1_000_001}, []string{"delta"}},
			{"adjustments", map[string]any{"warehouse": "AMS1", "delta": 1, "reason": long}, []string{"reason"}},
			{"reservations", map[string]any{"quantity": 0}, []string{"quantity"}},
			{"reservations", map[string]any{"quantity": -2, "warehouse": "1AMS"}, []string{"warehouse", "quantity"}},
			{"reservations", map[string]any{"quantity": 1, "reference": long}, []string{"reference"}},
			{"releases", map[string]any{"quantity": 1}, []string{"warehouse"}},
			{"shipments", map[string]any{"warehouse": "AMS1"}, []string{"quantity"}},
		}
		for _, tt := range tests {
			c.problem(c.move(ref, tt.op, tt.body), http.StatusUnprocessableEntity, "validation", tt.fields...)
		}
		c.problem(c.move("P-1", "reservations", map[string]any{"quantity": 1}), http.StatusBadRequest, "bad-request")
		c.problem(c.move("P-1", "adjustments", map[string]any{"warehouse": "AMS1", "delta": 1}), http.StatusBadRequest, "bad-request")
	}},
	{"malformed and oversized bodies", func(t *testing.T, c client, target Target) {
		ref := target.Product(t)
		for _, body := range []string{`{"warehouse":"AMS1","delta":`, `not json`, `{"warehouse":"AMS1","delta":"ten"}`, `[1,2]`, `{"delta":1}{"delta":2}`, ``} {
			c.problem(c.do(http.MethodPost, "/stock/"+ref+"/adjustments", body), http.StatusBadRequest, "bad-request")
		}
		c.problem(c.move(ref, "reservations", map[string]any{"quantity": "1"}), http.StatusBadRequest, "bad-request")
		big := fmt.Sprintf(`{"warehouse":"AMS1","delta":1,"reason":"%s"}`, strings.Repeat("x", target.MaxBodyBytes))
		c.problem(c.do(http.MethodPost, "/stock/"+ref+"/adjustments", big), http.StatusRequestEntityTooLarge, "too-large")
	}},
	{"list, filters and pages", func(t *testing.T, c client, target Target) {
		var refs []string
		for i := 0; i < 3; i++ {
			ref := target.Product(t)
			refs = append(refs, ref)
			c.adjust(ref, "AMS1", 5+i)
			c.adjust(ref, "MAD1", 1)
		}
		// The last product's MAD1 level has nothing available.
		c.ok(c.move(refs[2], "reservations", map[string]any{"warehouse": "MAD1", "quantity": 1}), &Level{})
		all := c.pages(t, "", 2)
		mine := map[string]Level{}
		for _, l := range all {
			if slices.Contains(refs, l.ProductRef) {
				mine[l.ProductRef+"/"+l.Warehouse] = l
			}
		}
		if len(mine) != 6 {
			t.Fatalf("the list holds %d of the 6 new levels: %v", len(mine), mine)
		}
		expectLevel(t, "listed", mine[refs[1]+"/AMS1"], refs[1], "AMS1", 6, 0, 1)
		expectLevel(t, "listed", mine[refs[2]+"/MAD1"], refs[2], "MAD1", 1, 1, 2)
		for _, l := range c.pages(t, "warehouse=mad1", 1) {
			if l.Warehouse != "MAD1" {
				t.Fatalf("warehouse filter let %+v through", l)
			}
		}
		var empty, stocked []string
		for _, l := range c.pages(t, "in_stock=false", 50) {
			if l.Available != 0 {
				t.Fatalf("in_stock=false let %+v through", l)
			}
			empty = append(empty, l.ProductRef+"/"+l.Warehouse)
		}
		for _, l := range c.pages(t, "in_stock=true&warehouse=MAD1", 100) {
			if l.Available == 0 || l.Warehouse != "MAD1" {
				t.Fatalf("in_stock=true&warehouse=MAD1 let %+v through", l)
			}
			stocked = append(stocked, l.ProductRef)
		}
		if !slices.Contains(empty, refs[2]+"/MAD1") || !slices.Contains(stocked, refs[0]) || slices.Contains(stocked, refs[2]) {
			t.Fatalf("in_stock filters: empty %v, stocked in MAD1 %v", empty, stocked)
		}
		var p page
		c.ok(c.do(http.MethodGet, "/stock", nil), &p)
		if len(p.Items) > 20 {
			t.Fatalf("default page size is 20, got %d", len(p.Items))
		}
		for _, bad := range []string{"limit=0", "limit=101", "limit=ten", "in_stock=yes", "warehouse=Madrid", "cursor=bogus", "colour=red", "limit=1&limit=2"} {
			c.problem(c.do(http.MethodGet, "/stock?"+bad, nil), http.StatusBadRequest, "bad-request")
		}
	}},
}

// pages reads every page of the list with the given filter and page size,
// checking that the pages chain and that the order is by reference, then
// warehouse.
func (c client) pages(t *testing.T, filter string, limit int) []Level {
	t.Helper()
	var all []Level
	cursor := ""
	for n := 0; ; n++ {
		if n > 10_000 {
			t.Fatal("the pages do not end")
		}
		q := fmt.Sprintf("?limit=%d", limit)
		if filter != "" {
			q += "&" + filter
		}
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		var p page
		c.ok(c.do(http.MethodGet, "/stock"+q, nil), &p)
		if len(p.Items) > limit {
			t.Fatalf("page of %d items for limit %d", len(p.Items), limit)
		}
		if p.NextCursor != "" && len(p.Items) != limit {
			t.Fatalf("a page of %d items (limit %d) has a next cursor", len(p.Items), limit)
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.ProductRef > b.ProductRef || (a.ProductRef == b.ProductRef && a.Warehouse >= b.Warehouse) {
			t.Fatalf("list out of order at %d: %s/%s then %s/%s", i, a.ProductRef, a.Warehouse, b.ProductRef, b.Warehouse)
		}
	}
	return all
}
