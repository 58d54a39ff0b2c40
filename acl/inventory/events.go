package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	if !r.OnHand.set {
		errs = append(errs, "on_hand is missing")
	}
	out.OnHand = r.OnHand.v
	switch {
	case r.Reserved.set:
		out.Reserved = r.Reserved.v
	case r.Available.set:
		out.Reserved = r.OnHand.v - r.Available.v
	}
	if out.Reserved < 0 || out.Reserved > out.OnHand {
		errs = append(errs, fmt.Sprintf("reserved %d is not within 0..on_hand %d", out.Reserved, out.OnHand))
	}
	out.Version = r.Version.v
	out.UpdatedAt = r.UpdatedAt.v
	if r.Movement != nil && r.Movement.Kind != "" {
		out.Movement = &Movement{Kind: r.Movement.Kind, Quantity: r.Movement.Quantity.v, Reference: r.Movement.Reference}
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
	out := ProductChange{ProductRef: r.ProductRef, SKU: strings.ToUpper(strings.TrimSpace(r.SKU)), Active: !r.Active.set || r.Active.v}
	if out.ProductRef == "" && r.ID.set && r.ID.v > 0 {
		out.ProductRef = ProductRef(int64(r.ID.v))
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

// flexInt reads an integer given as a JSON number (integral, possibly
// written as 12.0) or a string; null and absence leave it unset.
type flexInt struct {
	v   int
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := strings.Trim(string(b), `"`)
	if n, err := strconv.Atoi(s); err == nil {
		f.v, f.set = n, true
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != float64(int(x)) {
		return fmt.Errorf("%s is not an integer", b)
	}
	f.v, f.set = int(x), true
	return nil
}

// flexBool reads true/false, 1/0, "t"/"f" and their string forms.
type flexBool struct {
	v   bool
	set bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.ToLower(strings.Trim(string(bytes.TrimSpace(b)), `"`))
	switch s {
	case "null", "":
		return nil
	case "true", "t", "1", "yes":
		f.v, f.set = true, true
	case "false", "f", "0", "no":
		f.v, f.set = false, true
	default:
		return fmt.Errorf("%s is not a boolean", b)
	}
	return nil
}

// timeLayouts are the forms a legacy time arrives in: RFC 3339 from the
// monolith's events, and what SQLite and Postgres drivers print when a
// backfill reads a column as text.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

// flexTime reads a time in any of timeLayouts, or epoch milliseconds.
type flexTime struct{ v time.Time }

func (f *flexTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] != '"' {
		ms, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("%s is not a time", b)
		}
		f.v = time.UnixMilli(ms).UTC()
		return nil
	}
	s := strings.Trim(string(b), `"`)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			f.v = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%s is not a time", b)
}
