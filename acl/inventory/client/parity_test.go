package client_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// Seed products and their opening stock (see monolith/seed.go): P-000001
// has 12 in AMS1 and 10 in MAD1, P-000002 has 49 in AMS1 and 53 in BER1,
// P-000006 has 89 in AMS1, 85 in BER1 and 35 in MAD1.
var (
	ref1 = catalog.ProductRef(1)
	ref2 = catalog.ProductRef(2)
	ref6 = catalog.ProductRef(6)
	// unknownRef is well formed but names no product.
	unknownRef = catalog.ProductRef(999)
)

// sentinels are the errors the parity test compares with errors.Is.
var sentinels = []error{
	inventory.ErrNotFound, inventory.ErrOutOfStock, inventory.ErrNotReserved, inventory.ErrBelowReserved,
	inventory.ErrUnknownWarehouse, inventory.ErrUnknownProduct, client.ErrUnavailable,
}

// otherDSN returns a fresh database of the same dialect as dsn.
func otherDSN(t *testing.T, dsn string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "sqlite:") {
		return dbtest.SQLiteDSN(t)
	}
	return dbtest.PostgresDSN(t)
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestParity runs the same calls on two identically seeded shops, one
// through its inventory module in-process and one through the client over
// HTTP, and requires equal results and equal errors.
func TestParity(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		local := shoptest.New(t, dsn, shoptest.WithSeed()).Inventory()
		remote := newClient(t, client.Config{BaseURL: shoptest.New(t, otherDSN(t, dsn), shoptest.WithSeed()).URL})
		yes, no := true, false
		move := func(wh string, q int) inventory.Move {
			return inventory.Move{Warehouse: wh, Quantity: q, Reference: "order/1"}
		}
		cases := []struct {
			name string
			call func(ctx context.Context, api inventory.API) (any, error)
			// want is the sentinel the call must match, or nil.
			want error
			// status is the status of the *httpx.Problem the call must
			// give, or 0.
			status int
		}{
			{name: "warehouses", call: func(ctx context.Context, api inventory.API) (any, error) { return api.Warehouses(ctx) }},
			{name: "list first page", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.List(ctx, inventory.Query{})
			}},
			{name: "list filtered and paged", call: func(ctx context.Context, api inventory.API) (any, error) {
				first, err := api.List(ctx, inventory.Query{Warehouse: "mad1", InStock: &yes, Limit: 3})
				if err != nil || first.NextCursor == "" {
					return first, err
				}
				second, err := api.List(ctx, inventory.Query{Warehouse: "MAD1", InStock: &yes, Limit: 3, Cursor: first.NextCursor})
				return []inventory.Page{first, second}, err
			}},
			{name: "list out of stock", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.List(ctx, inventory.Query{InStock: &no})
			}},
			{name: "list bad warehouse", status: 400, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.List(ctx, inventory.Query{Warehouse: "X"})
			}},
			{name: "list bad cursor", status: 400, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.List(ctx, inventory.Query{Cursor: "not-a-cursor"})
			}},
			{name: "stock", call: func(ctx context.Context, api inventory.API) (any, error) { return api.Stock(ctx, ref6) }},
			{name: "stock of a product without any", want: inventory.ErrNotFound, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Stock(ctx, unknownRef)
			}},
			{name: "stock of a malformed ref", status: 400, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Stock(ctx, "sku-1")
			}},
			{name: "stock of an empty ref", status: 400, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Stock(ctx, "")
			}},
			{name: "delivery", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Adjust(ctx, ref1, inventory.Adjustment{Warehouse: "ber1", Delta: 7, Reason: "delivery"})
			}},
			{name: "delivery to an unknown warehouse", want: inventory.ErrUnknownWarehouse, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Adjust(ctx, ref1, inventory.Adjustment{Warehouse: "ZZZ9", Delta: 1})
			}},
			{name: "delivery of an unknown product", want: inventory.ErrUnknownProduct, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Adjust(ctx, unknownRef, inventory.Adjustment{Warehouse: "AMS1", Delta: 1})
			}},
			{name: "invalid adjustment", status: 422, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Adjust(ctx, ref1, inventory.Adjustment{Warehouse: "amsterdam", Delta: 0})
			}},
			{name: "reserve anywhere", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Reserve(ctx, ref2, move("", 30))
			}},
			{name: "reserve in a warehouse", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Reserve(ctx, ref1, move("AMS1", 10))
			}},
			{name: "write-off below reserved", want: inventory.ErrBelowReserved, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Adjust(ctx, ref1, inventory.Adjustment{Warehouse: "AMS1", Delta: -5, Reason: "count"})
			}},
			{name: "reserve more than any warehouse has", want: inventory.ErrOutOfStock, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Reserve(ctx, ref2, move("", 60))
			}},
			{name: "reserve more than the warehouse has", want: inventory.ErrOutOfStock, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Reserve(ctx, ref1, move("AMS1", 3))
			}},
			{name: "reserve for every line", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.ReserveAll(ctx, []inventory.Reservation{{ProductRef: ref2, Move: move("", 5)}, {ProductRef: ref6, Move: move("", 3)}})
			}},
			{name: "reserve for every line, the first out of stock", want: inventory.ErrOutOfStock, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.ReserveAll(ctx, []inventory.Reservation{{ProductRef: ref2, Move: move("", 500)}, {ProductRef: ref6, Move: move("", 3)}})
			}},
			{name: "invalid reservation of a line", status: 422, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.ReserveAll(ctx, []inventory.Reservation{{ProductRef: ref2, Move: move("", 1)}, {ProductRef: ref6, Move: move("", 0)}})
			}},
			{name: "invalid reservation", status: 422, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Reserve(ctx, ref1, inventory.Move{Quantity: 0})
			}},
			{name: "release", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Release(ctx, ref1, move("AMS1", 4))
			}},
			{name: "release more than reserved", want: inventory.ErrNotReserved, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Release(ctx, ref1, move("AMS1", 7))
			}},
			{name: "release where no level is", want: inventory.ErrNotFound, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Release(ctx, ref2, move("MAD1", 1))
			}},
			{name: "release without a warehouse", status: 422, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Release(ctx, ref1, move("", 1))
			}},
			{name: "ship", call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Ship(ctx, ref1, move("AMS1", 6))
			}},
			{name: "ship more than reserved", want: inventory.ErrNotReserved, call: func(ctx context.Context, api inventory.API) (any, error) {
				return api.Ship(ctx, ref1, move("AMS1", 1))
			}},
			{name: "stock after the moves", call: func(ctx context.Context, api inventory.API) (any, error) {
				a, err := api.Stock(ctx, ref1)
				if err != nil {
					return nil, err
				}
				b, err := api.Stock(ctx, ref2)
				return []inventory.ProductStock{a, b}, err
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				lv, lerr := c.call(ctx, local)
				rv, rerr := c.call(ctx, remote)
				checkExpected(t, "local", lerr, c.want, c.status)
				checkExpected(t, "remote", rerr, c.want, c.status)
				sameError(t, lerr, rerr)
				if lerr == nil && rerr == nil {
					if l, r := withoutTimes(lv), withoutTimes(rv); !reflect.DeepEqual(l, r) {
						t.Errorf("results differ:\nlocal  %+v\nremote %+v", l, r)
					}
				}
			})
		}
	})
}

// checkExpected fails unless err is what the case expects.
func checkExpected(t *testing.T, side string, err, want error, status int) {
	t.Helper()
	switch {
	case want != nil:
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", side, err, want)
		}
	case status != 0:
		var p *httpx.Problem
		if !errors.As(err, &p) || p.Status != status {
			t.Errorf("%s: error %v, want a %d problem", side, err, status)
		}
	case err != nil:
		t.Errorf("%s: %v", side, err)
	}
}

// sameError fails unless the two errors read alike and match the same
// sentinels and problems, as callers see them.
func sameError(t *testing.T, local, remote error) {
	t.Helper()
	if (local == nil) != (remote == nil) {
		t.Fatalf("local error %v, remote error %v", local, remote)
	}
	if local == nil {
		return
	}
	for _, s := range sentinels {
		if errors.Is(local, s) != errors.Is(remote, s) {
			t.Errorf("errors.Is(_, %q): local %v, remote %v", s, errors.Is(local, s), errors.Is(remote, s))
		}
	}
	var lp, rp *httpx.Problem
	if errors.As(local, &lp) != errors.As(remote, &rp) {
		t.Fatalf("local %T %v is a problem: %v; remote %T %v: %v", local, local, lp != nil, remote, remote, rp != nil)
	}
	if lp != nil && (lp.Status != rp.Status || lp.Type != rp.Type || lp.Title != rp.Title || !reflect.DeepEqual(lp.Errors, rp.Errors)) {
		t.Errorf("problems differ:\nlocal  %+v\nremote %+v", lp, rp)
	}
	if local.Error() != remote.Error() {
		t.Errorf("messages differ:\nlocal  %s\nremote %s", local, remote)
	}
}

// withoutTimes zeroes the UpdatedAt stamps, which differ between two shops
// that make the same changes at different instants.
func withoutTimes(v any) any {
	levels := func(ls []inventory.Level) []inventory.Level {
		out := append([]inventory.Level(nil), ls...)
		for i := range out {
			out[i].UpdatedAt = time.Time{}
		}
		return out
	}
	switch v := v.(type) {
	case inventory.Level:
		v.UpdatedAt = time.Time{}
		return v
	case []inventory.Level:
		return levels(v)
	case inventory.Page:
		v.Items = levels(v.Items)
		return v
	case []inventory.Page:
		out := make([]any, len(v))
		for i := range v {
			out[i] = withoutTimes(v[i])
		}
		return out
	case inventory.ProductStock:
		v.Warehouses = levels(v.Warehouses)
		return v
	case []inventory.ProductStock:
		out := make([]any, len(v))
		for i := range v {
			out[i] = withoutTimes(v[i])
		}
		return out
	}
	return v
}

// TestTolerantReader shows that the client ignores fields it does not know
// and reads problems from services that add fields of their own.
func TestTolerantReader(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/reservations") {
			w.Header().Set("Content-Type", httpx.ContentTypeProblem)
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"type":"` + httpx.ProblemTypeBase + `out-of-stock","title":"Out of stock","status":409,"detail":"none left","retry_after_days":3}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"product_ref":"P-000001","on_hand":5,"reserved":1,"qty_available":4,"sku":"new field","warehouses":[{"product_ref":"P-000001","warehouse":"AMS1","on_hand":5,"reserved":1,"qty_available":4,"version":3,"bin":"A-12"}]}`))
	}))
	c := newClient(t, client.Config{BaseURL: srv.URL})
	st, err := c.Stock(context.Background(), ref1)
	if err != nil {
		t.Fatal(err)
	}
	want := inventory.ProductStock{ProductRef: ref1, OnHand: 5, Reserved: 1, Available: 4, Warehouses: []inventory.Level{
		{ProductRef: ref1, Warehouse: "AMS1", OnHand: 5, Reserved: 1, Available: 4, Version: 3},
	}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stock %+v, want %+v", st, want)
	}
	_, err = c.Reserve(context.Background(), ref1, inventory.Move{Quantity: 1})
	var ce *client.Error
	if !errors.Is(err, inventory.ErrOutOfStock) || !errors.As(err, &ce) || ce.Problem.Status != http.StatusConflict || err.Error() != "none left" {
		t.Errorf("reserve: %v", err)
	}
}
