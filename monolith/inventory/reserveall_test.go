package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestReserveAllAsReserveOneByOne makes the same reservations with
// ReserveAll in one shop and with Reserve, one at a time, in another with
// the same stock, and requires the same outcome: the levels returned, the
// error, the stock, the journal and the outbox events. ReserveAll takes
// one statement for distinct products without a warehouse, and the path of
// Reserve for the rest, so the cases cover both and a failure in each.
func TestReserveAllAsReserveOneByOne(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		batch, single := shoptest.New(t, dsn), shoptest.New(t, anotherDSN(t, dsn))
		type stock struct {
			wh  string
			qty int
		}
		cases := []struct {
			name  string
			stock [][]stock // per product
			// moves index the products of stock.
			moves      []productMove
			outOfStock bool
		}{
			{name: "two products, the most available picked", stock: [][]stock{{{"AMS1", 5}, {"BER1", 9}}, {{"AMS1", 7}, {"MAD1", 3}}},
				moves: moves(0, 2, 1, 3)},
			{name: "a tie goes to the lower code", stock: [][]stock{{{"BER1", 4}, {"AMS1", 4}}, {{"MAD1", 6}, {"BER1", 6}}, {{"AMS1", 1}}},
				moves: moves(0, 1, 1, 6, 2, 1)},
			{name: "the second out of stock in any one warehouse", stock: [][]stock{{{"AMS1", 5}}, {{"AMS1", 3}, {"BER1", 3}}},
				moves: moves(0, 1, 1, 4), outOfStock: true},
			{name: "the first out of stock", stock: [][]stock{{{"AMS1", 1}}, {{"AMS1", 3}}},
				moves: moves(0, 2, 1, 1), outOfStock: true},
			{name: "one product twice", stock: [][]stock{{{"AMS1", 5}, {"BER1", 4}}, {{"AMS1", 3}}},
				moves: moves(0, 3, 1, 1, 0, 3)},
			{name: "a warehouse named", stock: [][]stock{{{"AMS1", 5}, {"BER1", 9}}, {{"AMS1", 3}}},
				moves: []productMove{{0, inventory.Move{Warehouse: "AMS1", Quantity: 2}}, {1, inventory.Move{Quantity: 1}}}},
			{name: "one reservation", stock: [][]stock{{{"AMS1", 5}, {"BER1", 9}}}, moves: moves(0, 9)},
		}
		for ci, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				refs := make([]string, len(c.stock))
				for _, shop := range []*shoptest.Shop{batch, single} {
					for i, levels := range c.stock {
						p := shop.With(t).CreateProduct(fmt.Sprintf("RSV-%d-%d", ci, i), 100)
						if refs[i] != "" && refs[i] != p.Ref {
							t.Fatalf("the shops gave product %d refs %s and %s", i, refs[i], p.Ref)
						}
						refs[i] = p.Ref
						for _, l := range levels {
							shop.With(t).AddStock(p.Ref, l.wh, l.qty)
						}
					}
				}
				rs := make([]inventory.Reservation, len(c.moves))
				for i, m := range c.moves {
					m.move.Reference = fmt.Sprintf("order/%d", ci)
					rs[i] = inventory.Reservation{ProductRef: refs[m.product], Move: m.move}
				}
				before := stockOf(t, batch, refs)
				got, gotErr := batch.Inventory().ReserveAll(ctx, rs)
				var want []inventory.Level
				var wantErr error
				for _, r := range rs {
					l, err := single.Inventory().Reserve(ctx, r.ProductRef, r.Move)
					if err != nil {
						wantErr = err
						break
					}
					want = append(want, l)
				}
				if c.outOfStock != errors.Is(gotErr, inventory.ErrOutOfStock) || (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("ReserveAll: %v; one by one: %v", gotErr, wantErr)
				}
				if gotErr != nil && gotErr.Error() != wantErr.Error() {
					t.Errorf("ReserveAll: %v; one by one: %v", gotErr, wantErr)
				}
				if !reflect.DeepEqual(levelsOnly(got), levelsOnly(want)) {
					t.Errorf("ReserveAll returned\n%+v\none by one\n%+v", levelsOnly(got), levelsOnly(want))
				}
				if c.outOfStock {
					// The one-by-one reservations before the failure stay;
					// ReserveAll's own transaction rolled back.
					if after := stockOf(t, batch, refs); !reflect.DeepEqual(after, before) {
						t.Errorf("the failed ReserveAll changed the stock:\nbefore %+v\nafter  %+v", before, after)
					}
					return
				}
				if b, s := stockOf(t, batch, refs), stockOf(t, single, refs); !reflect.DeepEqual(b, s) {
					t.Errorf("stock after ReserveAll\n%+v\none by one\n%+v", b, s)
				}
				ref := rs[0].Reference
				for _, q := range []string{
					"SELECT product_ref || ' ' || warehouse_code || ' ' || kind || ' ' || CAST(quantity AS TEXT) FROM inv_movements WHERE reference = ? ORDER BY id",
					"SELECT aggregateid || ' ' || type FROM outbox WHERE type = 'stock.reserved' AND CAST(payload AS TEXT) LIKE '%' || ? || '%' ORDER BY seq",
				} {
					if db, sg := rowsOf(t, batch, q, ref), rowsOf(t, single, q, ref); len(db) != len(rs) || !reflect.DeepEqual(db, sg) {
						t.Errorf("%s:\nReserveAll %q\none by one %q", q, db, sg)
					}
				}
			})
		}
	})
}

// productMove is one reservation of a case: a move of the case's product
// with this index.
type productMove struct {
	product int
	move    inventory.Move
}

// moves returns reservations without a warehouse of (product, quantity)
// pairs.
func moves(pq ...int) []productMove {
	out := make([]productMove, 0, len(pq)/2)
	for i := 0; i+1 < len(pq); i += 2 {
		out = append(out, productMove{pq[i], inventory.Move{Quantity: pq[i+1]}})
	}
	return out
}

// levelsOnly drops what differs between two shops from levels: the times.
func levelsOnly(ls []inventory.Level) []inventory.Level {
	out := make([]inventory.Level, len(ls))
	for i, l := range ls {
		l.UpdatedAt = time.Time{}
		out[i] = l
	}
	return out
}

func stockOf(t *testing.T, shop *shoptest.Shop, refs []string) []inventory.ProductStock {
	t.Helper()
	out := make([]inventory.ProductStock, len(refs))
	for i, ref := range refs {
		st, err := shop.Inventory().Stock(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		st.Warehouses = levelsOnly(st.Warehouses)
		out[i] = st
	}
	return out
}

func rowsOf(t *testing.T, shop *shoptest.Shop, q string, args ...any) []string {
	t.Helper()
	var out []string
	if err := shop.DB().Raw(q, args...).Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// anotherDSN returns a fresh database of the same dialect as dsn.
func anotherDSN(t *testing.T, dsn string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "sqlite:") {
		return dbtest.SQLiteDSN(t)
	}
	return dbtest.PostgresDSN(t)
}
