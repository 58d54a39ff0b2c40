package customers_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestGet reads customers back through the module's API, as the orders
// module checks an order's customer, and checks every field against what
// Create returned, and that an unknown id is ErrNotFound.
func TestGet(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		shop := shoptest.New(t, dsn)
		api := shop.Customers()
		created := []customers.Customer{shop.CreateCustomer("ada@example.com"), shop.CreateCustomer("grace@example.com")}
		for _, tc := range []struct {
			name    string
			id      int64
			want    *customers.Customer
			wantErr error
		}{
			{name: "first", id: created[0].ID, want: &created[0]},
			{name: "second", id: created[1].ID, want: &created[1]},
			{name: "unknown", id: created[1].ID + 100, wantErr: customers.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := api.Get(ctx, tc.id)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("Get(%d) = %+v, %v; want %v", tc.id, got, err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				w := *tc.want
				if !got.CreatedAt.Equal(w.CreatedAt) || !got.UpdatedAt.Equal(w.UpdatedAt) {
					t.Fatalf("Get(%d) stamps %v, %v; want %v, %v", tc.id, got.CreatedAt, got.UpdatedAt, w.CreatedAt, w.UpdatedAt)
				}
				got.CreatedAt, got.UpdatedAt = w.CreatedAt, w.UpdatedAt
				if got != w {
					t.Fatalf("Get(%d) = %+v, want %+v", tc.id, got, w)
				}
			})
		}
	})
}
