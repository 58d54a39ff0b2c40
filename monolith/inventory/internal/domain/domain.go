// Package domain holds the inventory module's contract types, errors and
// input rules. The module's api.go re-exports the public part. This is the
// contract an extracted inventory service must serve unchanged.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog"
)

// Level is the stock of one product in one warehouse.
type Level struct {
	// ProductRef is the legacy product reference, P-000042.
	ProductRef string `json:"product_ref"`
	// Warehouse is the warehouse code, such as AMS1.
	Warehouse string `json:"warehouse"`
	// OnHand counts the units in the warehouse.
	OnHand int `json:"on_hand"`
	// Reserved counts the units held for open orders.
	Reserved int `json:"reserved"`
	// Available is OnHand - Reserved, stored redundantly (legacy).
	Available int `json:"qty_available"`
	// Version counts the level's changes, starting at 1.
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProductStock is a product's stock in every warehouse that holds a level
// for it, with totals.
type ProductStock struct {
	ProductRef string  `json:"product_ref"`
	OnHand     int     `json:"on_hand"`
	Reserved   int     `json:"reserved"`
	Available  int     `json:"qty_available"`
	Warehouses []Level `json:"warehouses"`
}

// Warehouse is one of the shop's warehouses.
type Warehouse struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	Country string `json:"country"`
}

// Adjustment changes the units on hand: a delivery (positive delta) or a
// write-off or stock count correction (negative).
type Adjustment struct {
	Warehouse string `json:"warehouse"`
	Delta     int    `json:"delta"`
	// Reason is recorded in the movement journal.
	Reason string `json:"reason"`
}

// Move is the input of Reserve, Release and Ship.
type Move struct {
	// Warehouse is required by Release and Ship. Reserve picks the
	// warehouse with the most units available when it is empty.
	Warehouse string `json:"warehouse,omitempty"`
	// Quantity is at least 1.
	Quantity int `json:"quantity"`
	// Reference names what the units are for, such as "order/42"; it is
	// recorded in the movement journal.
	Reference string `json:"reference,omitempty"`
}

// Reservation is one item of ReserveAll: Move's units of the product
// ProductRef.
type Reservation struct {
	ProductRef string
	Move
}

// Query filters and pages List.
type Query struct {
	// Warehouse matches one warehouse code.
	Warehouse string
	// InStock, when set, matches levels with units available (true) or
	// without (false).
	InStock *bool
	// Limit is the page size: 0 means 20, at most 100.
	Limit int
	// Cursor is the next_cursor of the previous page, or "" for the first.
	Cursor string
}

// Page is one page of stock levels, ordered by product reference, then
// warehouse.
type Page struct {
	Items      []Level `json:"items"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// The module's errors that callers branch on.
var (
	// ErrNotFound: no stock level is recorded for the product (in the
	// warehouse).
	ErrNotFound = errors.New("no stock recorded")
	// ErrOutOfStock: no warehouse has the units available to reserve.
	ErrOutOfStock = errors.New("insufficient stock")
	// ErrNotReserved: fewer units are reserved than a release or shipment
	// names.
	ErrNotReserved = errors.New("not reserved")
	// ErrBelowReserved: an adjustment would leave fewer units on hand than
	// are reserved, or fewer than none.
	ErrBelowReserved = errors.New("adjustment below reserved stock")
	// ErrUnknownWarehouse: no warehouse has the code.
	ErrUnknownWarehouse = errors.New("unknown warehouse")
	// ErrUnknownProduct: the catalog has no product with the reference.
	ErrUnknownProduct = errors.New("unknown product")
)

// Limits on input, also stated in the OpenAPI document.
const (
	MaxQuantity  = 1_000_000
	MaxReasonLen = 200
)

// CheckRef checks a product reference. A malformed one is a 400, since the
// reference is the resource's identifier.
func CheckRef(ref string) error {
	if _, err := catalog.ParseProductRef(ref); err != nil {
		return httpx.BadRequest("%s", err.Error())
	}
	return nil
}

// NormalizeWarehouse puts a warehouse code in its stored form.
func NormalizeWarehouse(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

func validWarehouseCode(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return s[3] >= '0' && s[3] <= '9'
}

// Validate checks an adjustment and normalises it.
func (a *Adjustment) Validate() error {
	var v httpx.Validator
	a.Warehouse = NormalizeWarehouse(a.Warehouse)
	checkWarehouse(&v, a.Warehouse, true)
	v.Check(a.Delta != 0, "delta", "must not be zero")
	v.Check(a.Delta >= -MaxQuantity && a.Delta <= MaxQuantity, "delta", fmt.Sprintf("must be between -%d and %d", MaxQuantity, MaxQuantity))
	v.Check(utf8.RuneCountInString(a.Reason) <= MaxReasonLen, "reason", fmt.Sprintf("must be at most %d characters", MaxReasonLen))
	return v.Err()
}

// Validate checks a move and normalises it; warehouseRequired is false only
// for Reserve.
func (m *Move) Validate(warehouseRequired bool) error {
	var v httpx.Validator
	m.Warehouse = NormalizeWarehouse(m.Warehouse)
	checkWarehouse(&v, m.Warehouse, warehouseRequired)
	v.Check(m.Quantity >= 1 && m.Quantity <= MaxQuantity, "quantity", fmt.Sprintf("must be between 1 and %d, not %d", MaxQuantity, m.Quantity))
	v.Check(utf8.RuneCountInString(m.Reference) <= MaxReasonLen, "reference", fmt.Sprintf("must be at most %d characters", MaxReasonLen))
	return v.Err()
}

// Validate checks a list query; a bad filter is a 400.
func (q *Query) Validate() error {
	q.Warehouse = NormalizeWarehouse(q.Warehouse)
	if q.Warehouse != "" && !validWarehouseCode(q.Warehouse) {
		return httpx.BadRequest("warehouse must be a code such as AMS1, not %q", q.Warehouse)
	}
	return nil
}

func checkWarehouse(v *httpx.Validator, code string, required bool) {
	switch {
	case code == "":
		v.Check(!required, "warehouse", "is required")
	case !validWarehouseCode(code):
		v.Add("warehouse", fmt.Sprintf("must be a code of three letters and a digit such as AMS1, not %q", code))
	}
}
