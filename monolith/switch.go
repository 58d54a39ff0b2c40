package monolith

import (
	"context"
	"sync/atomic"

	"github.com/stranglerkit/strangler/monolith/inventory"
)

// inventorySwitch is the inventory.API the orders module holds. It forwards
// every call to its current target, which can be swapped while the shop
// serves: at the inventory's ownership flip, orders start reserving stock in
// the extracted service through an anti-corruption-layer client, without a
// restart and without orders knowing.
type inventorySwitch struct {
	local  inventory.API
	target atomic.Pointer[inventoryTarget]
}

// inventoryTarget boxes an interface value for atomic.Pointer.
type inventoryTarget struct{ api inventory.API }

var _ inventory.API = (*inventorySwitch)(nil)

func newInventorySwitch(local inventory.API) *inventorySwitch {
	s := &inventorySwitch{local: local}
	s.set(nil)
	return s
}

// set points the switch at api; nil points it back at the local module.
func (s *inventorySwitch) set(api inventory.API) {
	if api == nil {
		api = s.local
	}
	s.target.Store(&inventoryTarget{api: api})
}

func (s *inventorySwitch) current() inventory.API { return s.target.Load().api }

func (s *inventorySwitch) List(ctx context.Context, q inventory.Query) (inventory.Page, error) {
	return s.current().List(ctx, q)
}

func (s *inventorySwitch) Stock(ctx context.Context, ref string) (inventory.ProductStock, error) {
	return s.current().Stock(ctx, ref)
}

func (s *inventorySwitch) Warehouses(ctx context.Context) ([]inventory.Warehouse, error) {
	return s.current().Warehouses(ctx)
}

func (s *inventorySwitch) Adjust(ctx context.Context, ref string, a inventory.Adjustment) (inventory.Level, error) {
	return s.current().Adjust(ctx, ref, a)
}

func (s *inventorySwitch) Reserve(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	return s.current().Reserve(ctx, ref, m)
}

func (s *inventorySwitch) ReserveAll(ctx context.Context, rs []inventory.Reservation) ([]inventory.Level, error) {
	return s.current().ReserveAll(ctx, rs)
}

func (s *inventorySwitch) Release(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	return s.current().Release(ctx, ref, m)
}

func (s *inventorySwitch) Ship(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	return s.current().Ship(ctx, ref, m)
}
