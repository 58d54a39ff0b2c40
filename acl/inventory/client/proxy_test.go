package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/shoptest"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestThroughTheProxyAndDiscovery reaches the inventory the two ways the
// monolith does after the flip: through the proxy's data plane, and at an
// instance URL from the proxy's service registry.
func TestThroughTheProxyAndDiscovery(t *testing.T) {
	owner := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
	p := proxytest.Start(t, proxytest.Config{Legacy: owner.URL})
	admin := p.Admin(t)
	ctx := context.Background()
	if err := admin.Register(ctx, "inventory", owner.URL, time.Minute); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  client.Config
	}{
		{"proxy", client.Config{BaseURL: p.URL}},
		{"discovery", client.Config{Resolve: client.Discover(admin.Services, "inventory", time.Second)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newClient(t, c.cfg)
			l, err := cl.Reserve(ctx, ref6, inventory.Move{Warehouse: "MAD1", Quantity: 5, Reference: "order/" + c.name})
			if err != nil {
				t.Fatal(err)
			}
			st, err := owner.Inventory().Stock(ctx, ref6)
			if err != nil {
				t.Fatal(err)
			}
			if l.Warehouse != "MAD1" || st.Warehouses[2].Reserved != l.Reserved {
				t.Errorf("reserved %+v; the owner has %+v", l, st.Warehouses[2])
			}
			if _, err := cl.Release(ctx, ref6, inventory.Move{Warehouse: "MAD1", Quantity: 500}); !errors.Is(err, inventory.ErrNotReserved) {
				t.Errorf("release: %v", err)
			}
		})
	}
	t.Run("discovery with nothing registered", func(t *testing.T) {
		cl := newClient(t, client.Config{Resolve: client.Discover(admin.Services, "nobody", time.Second)})
		if _, err := cl.Warehouses(ctx); !errors.Is(err, client.ErrUnavailable) {
			t.Errorf("warehouses: %v", err)
		}
	})
}
