package inventory

import (
	"context"

	"github.com/stranglerkit/strangler/monolith/inventory/internal/domain"
)

// API is the inventory as other modules may use it. It mirrors the HTTP
// contract under /api/inventory one to one, so that a client of an
// extracted inventory service can implement it and take the module's place
// (see monolith.Shop.SetInventory); only ReserveAll has no route of its
// own, since a client can make it of Reserve calls.
//
// Stock is keyed by the legacy product reference (catalog.ProductRef) and a
// warehouse code. Invalid input gives an *httpx.Problem (400 or 422) naming
// every bad field.
type API interface {
	// List returns a page of stock levels, by product reference and
	// warehouse.
	List(ctx context.Context, q Query) (Page, error)
	// Stock returns a product's levels in every warehouse, or an error
	// wrapping ErrNotFound when none is recorded.
	Stock(ctx context.Context, ref string) (ProductStock, error)
	// Warehouses returns the shop's warehouses.
	Warehouses(ctx context.Context) ([]Warehouse, error)
	// Adjust adds or removes units on hand. It creates the level on the
	// first delivery of a product to a warehouse (ErrUnknownWarehouse,
	// ErrUnknownProduct), and never leaves fewer units on hand than are
	// reserved (ErrBelowReserved).
	Adjust(ctx context.Context, ref string, a Adjustment) (Level, error)
	// Reserve holds m.Quantity units in m.Warehouse, or when that is empty
	// in the warehouse with the most available, and returns the level it
	// changed, whose Warehouse the caller keeps to release or ship later.
	// Too few units available anywhere gives ErrOutOfStock.
	Reserve(ctx context.Context, ref string, m Move) (Level, error)
	// ReserveAll makes each of rs as Reserve makes one, such as an order's
	// lines, in one statement where it can, and returns the levels it
	// changed in the order of rs. On an error it also returns the levels
	// of the reservations before the one that failed: a caller whose
	// transaction does not cover the inventory (a remote service) releases
	// them, while the module's own reservations, of the transaction ctx
	// carries or of its own, go with that transaction's rollback.
	ReserveAll(ctx context.Context, rs []Reservation) ([]Level, error)
	// Release returns reserved units to available (ErrNotReserved when
	// fewer are reserved).
	Release(ctx context.Context, ref string, m Move) (Level, error)
	// Ship takes reserved units off hand (ErrNotReserved when fewer are
	// reserved).
	Ship(ctx context.Context, ref string, m Move) (Level, error)
}

// The contract types, defined in the module's internal domain package and
// documented there and in docs/api/shop.openapi.yaml.
type (
	// Level is the stock of one product in one warehouse.
	Level = domain.Level
	// ProductStock is a product's levels in every warehouse, with totals.
	ProductStock = domain.ProductStock
	// Warehouse is one of the shop's warehouses.
	Warehouse = domain.Warehouse
	// Adjustment is the input of Adjust.
	Adjustment = domain.Adjustment
	// Move is the input of Reserve, Release and Ship.
	Move = domain.Move
	// Reservation is one item of ReserveAll.
	Reservation = domain.Reservation
	// Query filters and pages List.
	Query = domain.Query
	// Page is one page of List.
	Page = domain.Page
)

// The errors callers branch on, with errors.Is.
var (
	ErrNotFound         = domain.ErrNotFound
	ErrOutOfStock       = domain.ErrOutOfStock
	ErrNotReserved      = domain.ErrNotReserved
	ErrBelowReserved    = domain.ErrBelowReserved
	ErrUnknownWarehouse = domain.ErrUnknownWarehouse
	ErrUnknownProduct   = domain.ErrUnknownProduct
)
