package orders_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

var errInjected = errors.New("injected failure")

// failSecondReserve is an inventory.API whose second Reserve fails without
// reaching the inventory; it records the calls that went through.
type failSecondReserve struct {
	inventory.API

	mu       sync.Mutex
	reserves int
	reserved []inventory.Level
	released []inventory.Level
}

func (f *failSecondReserve) Reserve(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	f.mu.Lock()
	f.reserves++
	n := f.reserves
	f.mu.Unlock()
	if n == 2 {
		return inventory.Level{}, errInjected
	}
	l, err := f.API.Reserve(ctx, ref, m)
	if err == nil {
		f.mu.Lock()
		f.reserved = append(f.reserved, l)
		f.mu.Unlock()
	}
	return l, err
}

// ReserveAll reserves one by one, so that the second fails here too.
func (f *failSecondReserve) ReserveAll(ctx context.Context, rs []inventory.Reservation) ([]inventory.Level, error) {
	var out []inventory.Level
	for _, r := range rs {
		l, err := f.Reserve(ctx, r.ProductRef, r.Move)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

func (f *failSecondReserve) Release(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	l, err := f.API.Release(ctx, ref, m)
	if err == nil {
		f.mu.Lock()
		f.released = append(f.released, l)
		f.mu.Unlock()
	}
	return l, err
}

// TestPlaceCompensatesReservations fails an order on its second
// reservation. With the local inventory module the transaction's rollback
// undoes the first reservation and the compensating release alike, so the
// stock is exactly as before, versions included. With a remote inventory
// (another shop's, through the ACL client) the rollback cannot reach the
// first reservation, so the compensating release must return it: the units
// are back and the level shows a reservation and a release.
func TestPlaceCompensatesReservations(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		cases := []struct {
			name string
			// stockHolder returns the inventory that holds the stock
			// orders reserve in, having pointed shop at it.
			stockHolder func(t *testing.T, shop *shoptest.Shop) inventory.API
			// versions is how much the first level's version moves.
			versions int
		}{
			{name: "local", versions: 0, stockHolder: func(t *testing.T, shop *shoptest.Shop) inventory.API {
				return shop.Inventory()
			}},
			{name: "remote", versions: 2, stockHolder: func(t *testing.T, shop *shoptest.Shop) inventory.API {
				owner := shoptest.New(t, anotherDSN(t, dsn), shoptest.WithSeed())
				c, err := client.New(client.Config{BaseURL: owner.URL})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				shop := shoptest.New(t, anotherDSN(t, dsn), shoptest.WithSeed())
				holder := c.stockHolder(t, shop)
				failing := &failSecondReserve{API: holder}
				shop.SetInventoryAPI(failing)
				refs := []string{catalog.ProductRef(1), catalog.ProductRef(2)}
				before := make([]inventory.ProductStock, len(refs))
				for i, ref := range refs {
					st, err := holder.Stock(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					before[i] = st
				}

				_, err := shop.Orders().Place(ctx, orders.NewOrder{CustomerID: 1, Lines: []orders.NewLine{
					{SKU: "COF-ETH-1K", Quantity: 3}, {SKU: "COF-ETH-250", Quantity: 2},
				}})
				if !errors.Is(err, errInjected) {
					t.Fatalf("place: %v, want the injected failure", err)
				}
				// The first reservation, of the lower reference, went
				// through and its release was called.
				if len(failing.reserved) != 1 || failing.reserved[0].ProductRef != refs[0] || len(failing.released) != 1 ||
					failing.released[0].ProductRef != refs[0] || failing.released[0].Warehouse != failing.reserved[0].Warehouse {
					t.Fatalf("reserved %+v, released %+v", failing.reserved, failing.released)
				}
				after := make([]inventory.ProductStock, len(refs))
				for i, ref := range refs {
					st, err := holder.Stock(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					after[i] = st
				}
				if after[0].Reserved != before[0].Reserved || after[0].OnHand != before[0].OnHand || after[1].Reserved != before[1].Reserved {
					t.Errorf("stock changed:\nbefore %+v\nafter  %+v", before, after)
				}
				wh := failing.reserved[0].Warehouse
				if got, was := levelIn(t, after[0], wh).Version, levelIn(t, before[0], wh).Version; got != was+c.versions {
					t.Errorf("version of %s in %s: %d, was %d, want +%d", refs[0], wh, got, was, c.versions)
				}
				if c.versions == 0 && !reflect.DeepEqual(before, after) {
					t.Errorf("the local stock changed:\nbefore %+v\nafter  %+v", before, after)
				}
				if p, err := shop.Orders().List(ctx, orders.Query{}); err != nil || len(p.Items) != 0 {
					t.Errorf("orders after the failure: %+v, %v", p.Items, err)
				}
			})
		}
	})
}

func levelIn(t *testing.T, st inventory.ProductStock, warehouse string) inventory.Level {
	t.Helper()
	for _, l := range st.Warehouses {
		if l.Warehouse == warehouse {
			return l
		}
	}
	t.Fatalf("%s has no level in %s", st.ProductRef, warehouse)
	return inventory.Level{}
}

// anotherDSN returns a fresh database of the same dialect as dsn.
func anotherDSN(t *testing.T, dsn string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "sqlite:") {
		return dbtest.SQLiteDSN(t)
	}
	return dbtest.PostgresDSN(t)
}
