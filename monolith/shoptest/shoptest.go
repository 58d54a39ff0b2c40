// Package shoptest runs the shop monolith for tests: a prepared shop on a
// real database behind an httptest.Server, JSON request helpers, and
// fixtures. Packages that put something in front of the shop (the proxy,
// the guides) use it as their backend.
//
//	shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
//	var p catalog.Product
//	shop.Get("/api/catalog/products/1").Expect(http.StatusOK).Decode(&p)
package shoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/inventory"
)

// Shop is a shop monolith served by an httptest.Server.
type Shop struct {
	*monolith.Shop
	// Server serves the shop's Handler on loopback.
	Server *httptest.Server
	// URL is the server's base URL, such as http://127.0.0.1:41234.
	URL string

	t testing.TB
}

type options struct {
	seed     bool
	prepare  bool
	log      *slog.Logger
	override func(*monolith.Config)
}

// Option changes how New builds the shop.
type Option func(*options)

// WithSeed loads the demo data set (50 products, 20 customers, stock).
// Without it the shop starts empty.
func WithSeed() Option { return func(o *options) { o.seed = true } }

// Unprepared skips Prepare: no migrations run, and /readyz answers 503
// until the test calls Prepare.
func Unprepared() Option { return func(o *options) { o.prepare = false } }

// WithLogger sends the shop's log, access log included, to log. Without it
// the log is discarded.
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// WithConfig changes the config after the defaults are set.
func WithConfig(fn func(*monolith.Config)) Option { return func(o *options) { o.override = fn } }

// Config returns the config New uses for dsn: defaults, a free loopback
// port, seeding off.
func Config(dsn string) monolith.Config {
	seed := false
	cfg := monolith.Config{Addr: "127.0.0.1:0", DSN: dsn, Seed: &seed}
	cfg.SetDefaults("")
	return cfg
}

// New builds the shop on dsn, migrates it (unless Unprepared), and serves
// it on an httptest.Server. Everything is closed when the test ends.
func New(t testing.TB, dsn string, opts ...Option) *Shop {
	t.Helper()
	o := options{prepare: true, log: httpx.Discard}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := Config(dsn)
	cfg.Seed = &o.seed
	if o.override != nil {
		o.override(&cfg)
	}
	shop, err := monolith.New(cfg, o.log)
	if err != nil {
		t.Fatalf("shoptest: %v", err)
	}
	srv := httptest.NewServer(shop.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := shop.Close(); err != nil {
			t.Errorf("shoptest: close: %v", err)
		}
	})
	if o.prepare {
		if err := shop.Prepare(context.Background()); err != nil {
			t.Fatalf("shoptest: prepare: %v", err)
		}
	}
	return &Shop{Shop: shop, Server: srv, URL: srv.URL, t: t}
}

// With returns the shop bound to t, for use inside a subtest: the helpers
// fail t instead of the test that built the shop.
func (s *Shop) With(t testing.TB) *Shop {
	c := *s
	c.t = t
	return &c
}

// Response is an HTTP response read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte

	t   testing.TB
	req string
}

// Do sends a request and reads the response. body is sent as is when it is
// a string or []byte (so tests can send malformed JSON), as JSON otherwise,
// and not at all when nil. headers are name, value pairs; a body gets
// Content-Type: application/json unless headers set one.
func (s *Shop) Do(method, path string, body any, headers ...string) *Response {
	s.t.Helper()
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
			s.t.Fatalf("shoptest: encode body: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		s.t.Fatalf("shoptest: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Server.Client().Do(req)
	if err != nil {
		s.t.Fatalf("shoptest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("shoptest: read %s %s: %v", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data, t: s.t, req: method + " " + path}
}

// Get sends a GET.
func (s *Shop) Get(path string) *Response { s.t.Helper(); return s.Do(http.MethodGet, path, nil) }

// Post sends a POST with a JSON body.
func (s *Shop) Post(path string, body any) *Response {
	s.t.Helper()
	return s.Do(http.MethodPost, path, body)
}

// Patch sends a PATCH with a JSON body.
func (s *Shop) Patch(path string, body any) *Response {
	s.t.Helper()
	return s.Do(http.MethodPatch, path, body)
}

// Delete sends a DELETE.
func (s *Shop) Delete(path string) *Response { s.t.Helper(); return s.Do(http.MethodDelete, path, nil) }

// Expect fails the test unless the response has status.
func (r *Response) Expect(status int) *Response {
	r.t.Helper()
	if r.Status != status {
		r.t.Fatalf("%s: status %d, want %d; body: %s", r.req, r.Status, status, r.Body)
	}
	return r
}

// Decode decodes the JSON body into v, failing the test if it cannot.
func (r *Response) Decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s: decode %s: %v", r.req, r.Body, err)
	}
}

// Problem decodes an RFC 9457 problem body, failing the test unless the
// response is one with a status matching the response's.
func (r *Response) Problem() httpx.Problem {
	r.t.Helper()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != httpx.ContentTypeProblem {
		r.t.Fatalf("%s: Content-Type %q, want %s; body: %s", r.req, r.Header.Get("Content-Type"), httpx.ContentTypeProblem, r.Body)
	}
	var p httpx.Problem
	r.Decode(&p)
	if p.Status != r.Status || p.Title == "" || p.Type == "" {
		r.t.Fatalf("%s: problem %+v does not match status %d", r.req, p, r.Status)
	}
	return p
}

// CreateProduct adds an active product priced in EUR through the catalog's
// API and returns it.
func (s *Shop) CreateProduct(sku string, priceCents int64) catalog.Product {
	s.t.Helper()
	p, err := s.Catalog().Create(context.Background(), catalog.NewProduct{SKU: sku, Name: "Product " + sku, PriceCents: priceCents, Currency: "EUR"})
	if err != nil {
		s.t.Fatalf("shoptest: create product %s: %v", sku, err)
	}
	return p
}

// CreateCustomer adds a customer with email through the customers API and
// returns it.
func (s *Shop) CreateCustomer(email string) customers.Customer {
	s.t.Helper()
	c, err := s.Customers().Create(context.Background(), customers.NewCustomer{
		Email: email, Name: "Customer " + email,
		Address: &customers.Address{Line1: "Damrak 1", PostalCode: "1012 LG", City: "Amsterdam", Country: "NL"},
	})
	if err != nil {
		s.t.Fatalf("shoptest: create customer %s: %v", email, err)
	}
	return c
}

// AddStock delivers qty units of the product with ref to warehouse through
// the inventory's API and returns the new level.
func (s *Shop) AddStock(ref, warehouse string, qty int) inventory.Level {
	s.t.Helper()
	l, err := s.Inventory().Adjust(context.Background(), ref, inventory.Adjustment{Warehouse: warehouse, Delta: qty, Reason: "test delivery"})
	if err != nil {
		s.t.Fatalf("shoptest: add %d of %s to %s: %v", qty, ref, warehouse, err)
	}
	return l
}

// Case is one request and the answer it must get: a status and, for errors,
// a problem document whose detail contains Detail, whose type ends in
// "#"+Slug, and which lists Field among its invalid fields.
type Case struct {
	Name   string
	Method string
	Path   string
	// Body is sent as Do sends it: raw for a string or []byte, as JSON
	// otherwise.
	Body any
	// Header holds name, value pairs.
	Header []string
	Status int
	Detail string
	Slug   string
	Field  string
}

// Run runs each case as a subtest.
func (s *Shop) Run(t *testing.T, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Helper()
			r := s.With(t).Do(c.Method, c.Path, c.Body, c.Header...).Expect(c.Status)
			if c.Status < 400 {
				return
			}
			p := r.Problem()
			if c.Detail != "" && !strings.Contains(p.Detail, c.Detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, c.Detail)
			}
			if c.Slug != "" && !strings.HasSuffix(p.Type, "#"+c.Slug) {
				t.Errorf("type %q is not of kind %q", p.Type, c.Slug)
			}
			if c.Field != "" {
				var fields []string
				for _, f := range p.Errors {
					fields = append(fields, f.Field)
				}
				if !slices.Contains(fields, c.Field) {
					t.Errorf("invalid fields %v do not include %q", fields, c.Field)
				}
			}
			if p.Instance == "" || p.RequestID == "" {
				t.Errorf("problem lacks instance or request_id: %+v", p)
			}
		})
	}
}
