package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/acl/internal/legacyjson"
	"github.com/stranglerkit/strangler/changefeed"
)

// The monolith's event contract, as the ACL reads it.
const (
	// StockAggregate is the aggregate type (topic suffix) of the
	// monolith's stock events.
	StockAggregate = "stock"
	// ProductAggregate is the aggregate type of the catalog's events.
	ProductAggregate = "product"
	// LegacyOrigin is the origin tag of changes that started in the
	// monolith.
	LegacyOrigin = "monolith"
)

// The monolith's stock event types. StockSnapshot is what a backfill of
// inv_stock gives (see BackfillJobs).
const (
	StockAdjusted = "stock.adjusted"
	StockReserved = "stock.reserved"
	StockReleased = "stock.released"
	StockShipped  = "stock.shipped"
	StockSnapshot = "stock.snapshot"
)

// The catalog's product event types. ProductSnapshot is what a backfill of
// catalog_products gives.
const (
	ProductCreated  = "product.created"
	ProductChanged  = "product.changed"
	ProductSnapshot = "product.snapshot"
)

// StockChange is a monolith stock event, read tolerantly: the level after
// the change and, for change events, the movement that made it.
type StockChange struct {
	ProductRef string
	Warehouse  string
	OnHand     int
	Reserved   int
	Version    int
	UpdatedAt  time.Time
	// Movement is nil for a snapshot, and for a change event that does
	// not carry one (the level is then taken as state).
	Movement *Movement
}

// Movement is a legacy movement: kind adjust, reserve, release or ship, and
// the units (signed for adjust).
type Movement struct {
	Kind      string
	Quantity  int
	Reference string
}

type rawStock struct {
	ProductRef    string   `json:"product_ref"`
	Warehouse     string   `json:"warehouse"`
	WarehouseCode string   `json:"warehouse_code"`
	StockKey      string   `json:"stock_key"`
	OnHand        flexInt  `json:"on_hand"`
	Reserved      flexInt  `json:"reserved"`
	Available     flexInt  `json:"qty_available"`
	Version       flexInt  `json:"version"`
	UpdatedAt     flexTime `json:"updated_at"`
	Movement      *struct {
		Kind      string  `json:"kind"`
		Quantity  flexInt `json:"quantity"`
		Reference string  `json:"reference"`
	} `json:"movement"`
}

// The tolerant readers of legacy JSON values, shared with the other ACLs.
type (
	flexInt  = legacyjson.Int
	flexBool = legacyjson.Bool
	flexTime = legacyjson.Time
)

// ErrMalformed is wrapped by the errors of events that cannot be read even
// tolerantly; retrying cannot fix them.
var ErrMalformed = errors.New("malformed legacy event")

// DecodeStock reads a stock event's payload. The product reference and
// warehouse come from the payload, or from the aggregate id
// ("P-000042/AMS1", also a snapshot's stock_key); a snapshot without the
// rename has warehouse_code. reserved may be missing when qty_available is
// there (reserved = on_hand - qty_available); a missing version reads as 0,
// which the service treats as unknown.
func DecodeStock(ev changefeed.Event) (StockChange, error) {
	var r rawStock
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return StockChange{}, fmt.Errorf("%w: %s %s: %v", ErrMalformed, ev.Type, ev.ID, err)
	}
	out := StockChange{ProductRef: r.ProductRef, Warehouse: r.Warehouse}
	if out.Warehouse == "" {
		out.Warehouse = r.WarehouseCode
	}
	for _, key := range []string{r.StockKey, ev.AggregateID} {
		if ref, code, ok := strings.Cut(key, "/"); ok {
			if out.ProductRef == "" {
				out.ProductRef = ref
			}
			if out.Warehouse == "" {
				out.Warehouse = code
			}
		}
	}
	out.Warehouse = NormalizeWarehouseCode(out.Warehouse)
	var errs []string
	if _, err := ParseProductRef(out.ProductRef); err != nil {
		errs = append(errs, err.Error())
	}
	if !ValidWarehouseCode(out.Warehouse) {
		errs = append(errs, fmt.Sprintf("warehouse %q is not a warehouse code", out.Warehouse))
	}
	if !r.OnHand.Set {
		errs = append(errs, "on_hand is missing")
	}
	out.OnHand = r.OnHand.V
	switch {
	case r.Reserved.Set:
		out.Reserved = r.Reserved.V
	case r.Available.Set:
		out.Reserved = r.OnHand.V - r.Available.V
	}
	if out.Reserved < 0 || out.Reserved > out.OnHand {
		errs = append(errs, fmt.Sprintf("reserved %d is not within 0..on_hand %d", out.Reserved, out.OnHand))
	}
	out.Version = r.Version.V
	out.UpdatedAt = r.UpdatedAt.V
	if r.Movement != nil && r.Movement.Kind != "" {
		out.Movement = &Movement{Kind: r.Movement.Kind, Quantity: r.Movement.Quantity.V, Reference: r.Movement.Reference}
		switch out.Movement.Kind {
		case "adjust", "reserve", "release", "ship":
		default:
			errs = append(errs, fmt.Sprintf("movement kind %q is unknown", out.Movement.Kind))
		}
	}
	if len(errs) > 0 {
		return StockChange{}, fmt.Errorf("%w: %s %s: %s", ErrMalformed, ev.Type, ev.ID, strings.Join(errs, "; "))
	}
	return out, nil
}

// ProductChange is a catalog product event, read tolerantly: what the ACL
// needs of it is the reference ↔ SKU pair and whether it is active.
type ProductChange struct {
	ProductRef string
	SKU        string
	Active     bool
}

type rawProduct struct {
	ID         flexInt  `json:"id"`
	ProductRef string   `json:"product_ref"`
	SKU        string   `json:"sku"`
	Active     flexBool `json:"active"`
}

// DecodeProduct reads a product event's payload. The reference is
// product_ref, or derived from id when missing (a snapshot of
// catalog_products has no product_ref column); a missing active reads as
// true.
func DecodeProduct(ev changefeed.Event) (ProductChange, error) {
	var r rawProduct
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return ProductChange{}, fmt.Errorf("%w: %s %s: %v", ErrMalformed, ev.Type, ev.ID, err)
	}
	out := ProductChange{ProductRef: r.ProductRef, SKU: strings.ToUpper(strings.TrimSpace(r.SKU)), Active: !r.Active.Set || r.Active.V}
	if out.ProductRef == "" && r.ID.Set && r.ID.V > 0 {
		out.ProductRef = ProductRef(int64(r.ID.V))
	}
	if out.ProductRef == "" {
		if _, err := ParseProductRef(ev.AggregateID); err == nil {
			out.ProductRef = ev.AggregateID
		}
	}
	var errs []string
	if _, err := ParseProductRef(out.ProductRef); err != nil {
		errs = append(errs, "no product reference: "+err.Error())
	}
	if out.SKU == "" {
		errs = append(errs, "sku is missing")
	}
	if len(errs) > 0 {
		return ProductChange{}, fmt.Errorf("%w: %s %s: %s", ErrMalformed, ev.Type, ev.ID, strings.Join(errs, "; "))
	}
	return out, nil
}
