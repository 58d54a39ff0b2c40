package inventory_test

import (
	"context"
	"testing"

	"gorm.io/gorm"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
	"github.com/stranglerkit/strangler/httpx"
)

func handle(t *testing.T, gdb *gorm.DB, h func(context.Context, *gorm.DB, changefeed.Event) error, ev changefeed.Event) {
	t.Helper()
	err := db.Transact(context.Background(), gdb, func(ctx context.Context) error { return h(ctx, db.Conn(ctx, gdb), ev) })
	if err != nil {
		t.Fatalf("%s: %v", ev.Type, err)
	}
}

// TestForward applies golden events to a real service database: stock
// events that arrive before their product are parked and applied when it
// comes, deltas apply on top of state, events of the service's own origin
// are ignored, and snapshots are ignored once the service owns the stock.
func TestForward(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, inventory.Migrations()...)
		svc := service.New(gdb, nil)
		fwd := aclinv.NewForward(svc, aclinv.NewMapper(gdb), httpx.Discard)
		level := func() (onHand, reserved, version int) {
			t.Helper()
			var r struct{ OnHand, Reserved, Version int }
			if err := gdb.Raw("SELECT on_hand, reserved, version FROM legacy_stock WHERE stock_key = 'P-000042/AMS1'").Scan(&r).Error; err != nil {
				t.Fatal(err)
			}
			return r.OnHand, r.Reserved, r.Version
		}
		steps := []struct {
			file             string
			product          bool
			onHand, reserved int
			version          int
			parked           int64
		}{
			// Parked: no product pair yet, so nothing to see.
			{file: "stock.adjusted.json", parked: 1},
			{file: "stock.reserved.json", parked: 2},
			// The product arrives: the first parked event gives state
			// (12/2 v4), the second a delta (+3 reserved).
			{file: "product.created.json", product: true, onHand: 12, reserved: 5, version: 5},
			{file: "stock.released.json", onHand: 12, reserved: 2, version: 6},
			{file: "stock.shipped.json", onHand: 10, reserved: 0, version: 7},
		}
		for _, s := range steps {
			ev := readEvent(t, s.file)
			if s.product {
				handle(t, gdb, fwd.HandleProduct, ev)
			} else {
				handle(t, gdb, fwd.HandleStock, ev)
			}
			if _, parked, _ := fwd.Stats(); parked != s.parked {
				t.Fatalf("after %s: %d parked, want %d", s.file, parked, s.parked)
			}
			if s.parked == 0 {
				if on, res, v := level(); on != s.onHand || res != s.reserved || v != s.version {
					t.Fatalf("after %s: %d/%d v%d, want %d/%d v%d", s.file, on, res, v, s.onHand, s.reserved, s.version)
				}
			}
		}
		own := readEvent(t, "stock.adjusted.json")
		own.ID, own.Origin = [16]byte{1}, "inventory-service"
		handle(t, gdb, fwd.HandleStock, own)
		if on, _, _ := level(); on != 10 {
			t.Fatalf("an event of the service's own origin was applied: on hand %d", on)
		}
		snap := readEvent(t, "stock.snapshot.sqlite.json")
		snap.AggregateID = "P-000042/AMS1"
		snap.Payload = []byte(`{"product_ref":"P-000042","warehouse":"AMS1","on_hand":30,"reserved":1,"version":9}`)
		changefeedtest.Must(t, svc.SetOwner(context.Background(), true))
		handle(t, gdb, fwd.HandleStock, snap)
		if on, _, _ := level(); on != 10 {
			t.Fatalf("a snapshot overwrote the owner's state: on hand %d", on)
		}
		changefeedtest.Must(t, svc.SetOwner(context.Background(), false))
		handle(t, gdb, fwd.HandleStock, snap)
		if on, res, v := level(); on != 30 || res != 1 || v != 9 {
			t.Fatalf("snapshot applied as %d/%d v%d, want 30/1 v9", on, res, v)
		}
		// The migration seeds acl_warehouses with WarehouseCodes.
		var pairs []struct{ LegacyCode, Warehouse string }
		changefeedtest.Must(t, gdb.Raw("SELECT legacy_code, warehouse FROM acl_warehouses").Scan(&pairs).Error)
		if len(pairs) != len(aclinv.WarehouseCodes) {
			t.Fatalf("acl_warehouses has %d rows, WarehouseCodes %d", len(pairs), len(aclinv.WarehouseCodes))
		}
		for _, p := range pairs {
			if aclinv.WarehouseCodes[p.LegacyCode] != p.Warehouse {
				t.Errorf("acl_warehouses maps %s to %s, WarehouseCodes to %s", p.LegacyCode, p.Warehouse, aclinv.WarehouseCodes[p.LegacyCode])
			}
		}
	})
}
