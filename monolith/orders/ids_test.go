package orders_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestOrderIDs places orders alternately from two shops on one database,
// as two processes would, each with its own block of IDs on Postgres, and
// checks that every order gets an ID of its own, that each shop's IDs
// rise, and that the other shop reads every order whole, lines included:
// the rows the commit wrote in one statement.
func TestOrderIDs(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		a := shoptest.New(t, dsn)
		b := shoptest.New(t, dsn)
		p := a.CreateProduct("IDS-1", 500)
		a.AddStock(p.Ref, "AMS1", 1000)
		cust := a.CreateCustomer("ids@example.com")
		ctx := context.Background()
		seen := map[int64]string{}
		last := map[string]int64{}
		for i := range 40 {
			shop, name, other := a, "a", b
			if i%2 == 1 {
				shop, name, other = b, "b", a
			}
			o, err := shop.Orders().Place(ctx, orders.NewOrder{CustomerID: cust.ID, Lines: []orders.NewLine{{SKU: "IDS-1", Quantity: 1 + i%3}}})
			if err != nil {
				t.Fatalf("order %d from %s: %v", i, name, err)
			}
			if by, dup := seen[o.ID]; dup {
				t.Fatalf("order %d from %s has ID %d, which %s gave already", i, name, o.ID, by)
			}
			if o.ID <= last[name] {
				t.Errorf("order %d from %s has ID %d, not above its previous %d", i, name, o.ID, last[name])
			}
			seen[o.ID], last[name] = name, o.ID
			got, err := other.Orders().Get(ctx, o.ID)
			if err != nil {
				t.Fatalf("order %d read from the other shop: %v", o.ID, err)
			}
			if want := fmt.Sprint(o.Lines); fmt.Sprint(got.Lines) != want || got.TotalCents != o.TotalCents || got.CustomerEmail != cust.Email {
				t.Errorf("order %d read back as %+v, placed as %+v", o.ID, got, o)
			}
		}
	})
}
