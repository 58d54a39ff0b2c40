// Package inventory is the anti-corruption layer between the shop
// monolith's inventory module and the extracted inventory service. It is
// the only code that knows both models, and it translates both ways:
//
//   - the monolith's legacy product reference (P-000042) and the service's
//     SKU, a mapping it learns from the catalog's product events and keeps
//     in the service's database (acl_product_refs);
//   - the monolith's warehouse codes (AMS1) and the service's warehouse
//     ids (nl-ams), a fixed table (WarehouseCodes, acl_warehouses);
//   - the monolith's redundant qty_available, derived from on hand and
//     reserved, and its version counter.
//
// It is used in three places: Forward applies the monolith's change events
// to the service (a consumer in the service), Facade serves the monolith's
// /api/inventory contract from the service, and BackSync applies the
// service's events to the monolith's tables after the ownership flip.
//
// Everything that reads legacy data is a tolerant reader: unknown fields
// are ignored, optional fields may be missing, numbers may come as JSON
// numbers or strings, times in the formats the drivers and backfill give,
// and unknown event types are skipped and counted by the consumer.
package inventory

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/extracted/inventory/domain"
)

// Level is a stock level as the monolith's contract has it.
type Level struct {
	ProductRef string    `json:"product_ref"`
	Warehouse  string    `json:"warehouse"`
	OnHand     int       `json:"on_hand"`
	Reserved   int       `json:"reserved"`
	Available  int       `json:"qty_available"`
	Version    int       `json:"version"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ProductStock is a product's levels with totals, as the monolith's
// contract has it.
type ProductStock struct {
	ProductRef string  `json:"product_ref"`
	OnHand     int     `json:"on_hand"`
	Reserved   int     `json:"reserved"`
	Available  int     `json:"qty_available"`
	Warehouses []Level `json:"warehouses"`
}

// Warehouse is a warehouse as the monolith's contract has it.
type Warehouse struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	Country string `json:"country"`
}

// Adjustment is the body of POST .../adjustments in the legacy contract.
type Adjustment struct {
	Warehouse string `json:"warehouse"`
	Delta     int    `json:"delta"`
	Reason    string `json:"reason"`
}

// Move is the body of POST .../reservations, releases and shipments in the
// legacy contract.
type Move struct {
	Warehouse string `json:"warehouse,omitempty"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference,omitempty"`
}

// Page is one page of GET /stock in the legacy contract.
type Page struct {
	Items      []Level `json:"items"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// WarehouseCodes maps the monolith's warehouse codes to the service's
// warehouse ids. The service's migration seeds acl_warehouses with the same
// pairs (a test checks it), so that SQL can join on them.
var WarehouseCodes = map[string]string{
	"AMS1": "nl-ams",
	"BER1": "de-ber",
	"MAD1": "es-mad",
}

// WarehouseID returns the service's id of a legacy warehouse code.
func WarehouseID(code string) (string, bool) {
	id, ok := WarehouseCodes[code]
	return id, ok
}

// WarehouseCode returns the legacy code of a service warehouse id.
func WarehouseCode(id string) (string, bool) {
	for code, wid := range WarehouseCodes {
		if wid == id {
			return code, true
		}
	}
	return "", false
}

// ProductRef returns the legacy product reference of catalog product id,
// "P-000042" for 42.
func ProductRef(id int64) string { return fmt.Sprintf("P-%06d", id) }

// ParseProductRef returns the catalog product id of a legacy reference.
// Only the canonical form that ProductRef produces is accepted, as the
// monolith accepts only it.
func ParseProductRef(ref string) (int64, error) {
	digits, ok := strings.CutPrefix(ref, "P-")
	if ok && len(digits) >= 6 {
		if id, err := strconv.ParseInt(digits, 10, 64); err == nil && id > 0 && ProductRef(id) == ref {
			return id, nil
		}
	}
	return 0, fmt.Errorf("product reference %q is not of the form P-000042", ref)
}

// NormalizeWarehouseCode puts a legacy warehouse code in its stored form.
func NormalizeWarehouseCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// ValidWarehouseCode reports whether s has the form of a legacy warehouse
// code: three letters and a digit.
func ValidWarehouseCode(s string) bool {
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

// ToLevel translates a service item into the legacy level of product ref
// in warehouse code, deriving qty_available.
func ToLevel(it domain.Item, ref, code string) Level {
	return Level{
		ProductRef: ref, Warehouse: code,
		OnHand: it.OnHand, Reserved: it.Reserved, Available: it.OnHand - it.Reserved,
		Version: it.Version, UpdatedAt: it.UpdatedAt.UTC(),
	}
}
