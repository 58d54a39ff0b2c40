// Package domain is the inventory service's own model: stock items keyed by
// SKU and warehouse id, with units on hand and reserved and a version for
// optimistic concurrency, and the events the service publishes about them.
// It knows nothing of the monolith it was extracted from; package
// acl/inventory translates between the two.
package domain

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stranglerkit/strangler/httpx"
)

// Item is the stock of one SKU in one warehouse.
type Item struct {
	SKU       string `json:"sku"`
	Warehouse string `json:"warehouse"`
	OnHand    int    `json:"on_hand"`
	Reserved  int    `json:"reserved"`
	// Version counts the item's changes, starting at 1; writes may name
	// the version they expect (optimistic concurrency).
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Available is the units that can still be reserved.
func (i Item) Available() int { return i.OnHand - i.Reserved }

// Warehouse is one of the service's warehouses, with an id of its own
// scheme ("nl-ams").
type Warehouse struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Country string `json:"country"`
}

// The kinds of movement.
const (
	KindAdjust  = "adjust"
	KindReserve = "reserve"
	KindRelease = "release"
	KindShip    = "ship"
)

// Movement is one change of an item: the kind, the units (signed for an
// adjustment) and what they are for.
type Movement struct {
	Kind      string `json:"kind"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference,omitempty"`
}

// Delta returns the change a movement makes to on hand and reserved.
func (m Movement) Delta() (onHand, reserved int, err error) {
	switch m.Kind {
	case KindAdjust:
		return m.Quantity, 0, nil
	case KindReserve:
		return 0, m.Quantity, nil
	case KindRelease:
		return 0, -m.Quantity, nil
	case KindShip:
		return -m.Quantity, -m.Quantity, nil
	}
	return 0, 0, fmt.Errorf("unknown movement kind %q", m.Kind)
}

// Events.
const (
	// AggregateType is the aggregate type of the service's events, and so
	// their topic: <topic_prefix>.inventory-item.
	AggregateType = "inventory-item"
	// Source is the service's name in its events and its consumer group.
	Source = "inventory-service"
	// Origin tags the changes that started in the service. Changes the
	// service applied from another system keep that system's origin.
	Origin = "inventory-service"
	// EventSynced is the type of the event that records a state the
	// service took over whole from another system (a snapshot).
	EventSynced = "item.synced"
)

// EventType names the event of a movement kind: item.adjusted,
// item.reserved, item.released or item.shipped.
func EventType(kind string) string {
	switch kind {
	case KindAdjust:
		return "item.adjusted"
	case KindReserve:
		return "item.reserved"
	case KindRelease:
		return "item.released"
	case KindShip:
		return "item.shipped"
	}
	return "item." + kind
}

// ItemKey is an item's aggregate id, "COF-ETH-250@nl-ams".
func ItemKey(sku, warehouse string) string { return sku + "@" + warehouse }

// ItemEvent is the payload of every event the service publishes: the item
// after the change, and the movement that made it (nil for item.synced).
type ItemEvent struct {
	Item
	Movement *Movement `json:"movement,omitempty"`
}

// The service's errors, matched with errors.Is.
var (
	ErrNotFound         = errors.New("no stock recorded")
	ErrOutOfStock       = errors.New("insufficient stock")
	ErrNotReserved      = errors.New("not reserved")
	ErrBelowReserved    = errors.New("adjustment below reserved stock")
	ErrUnknownWarehouse = errors.New("unknown warehouse")
	ErrUnknownProduct   = errors.New("unknown product")
	ErrVersionConflict  = errors.New("version conflict")
	// ErrNotOwner: the service is a read replica and refuses writes until
	// it owns the inventory (see the ownership flip in docs).
	ErrNotOwner = errors.New("the service does not own the inventory yet")
)

// Limits on input.
const (
	MaxQuantity     = 1_000_000
	MaxReferenceLen = 200
)

// skuPattern is what the catalog accepts as a SKU, in its stored form.
var skuPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{1,31}$`)

// NormalizeSKU puts a SKU in its stored form: trimmed, in upper case.
func NormalizeSKU(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// ValidSKU reports whether s is a SKU in its stored form.
func ValidSKU(s string) bool { return skuPattern.MatchString(s) }

// Adjustment is the input of Adjust.
type Adjustment struct {
	Warehouse string `json:"warehouse"`
	Delta     int    `json:"delta"`
	Reason    string `json:"reason"`
	// ExpectedVersion, when set, makes the adjustment fail with
	// ErrVersionConflict unless the item is at this version.
	ExpectedVersion *int `json:"expected_version,omitempty"`
}

// Validate checks an adjustment.
func (a *Adjustment) Validate() error {
	var v httpx.Validator
	a.Warehouse = strings.TrimSpace(a.Warehouse)
	v.Check(a.Warehouse != "", "warehouse", "is required")
	v.Check(a.Delta != 0, "delta", "must not be zero")
	v.Check(a.Delta >= -MaxQuantity && a.Delta <= MaxQuantity, "delta", fmt.Sprintf("must be between -%d and %d", MaxQuantity, MaxQuantity))
	v.Check(utf8.RuneCountInString(a.Reason) <= MaxReferenceLen, "reason", fmt.Sprintf("must be at most %d characters", MaxReferenceLen))
	return v.Err()
}

// Move is the input of Reserve, Release and Ship.
type Move struct {
	// Warehouse is required by Release and Ship; Reserve picks the one
	// with the most available when it is empty.
	Warehouse string `json:"warehouse,omitempty"`
	Quantity  int    `json:"quantity"`
	// Reference names what the units are for ("order/42"). A reservation
	// with a reference is idempotent: repeating it changes nothing.
	Reference string `json:"reference,omitempty"`
}

// Validate checks a move.
func (m *Move) Validate(warehouseRequired bool) error {
	var v httpx.Validator
	m.Warehouse = strings.TrimSpace(m.Warehouse)
	v.Check(!warehouseRequired || m.Warehouse != "", "warehouse", "is required")
	v.Check(m.Quantity >= 1 && m.Quantity <= MaxQuantity, "quantity", fmt.Sprintf("must be between 1 and %d, not %d", MaxQuantity, m.Quantity))
	v.Check(utf8.RuneCountInString(m.Reference) <= MaxReferenceLen, "reference", fmt.Sprintf("must be at most %d characters", MaxReferenceLen))
	return v.Err()
}

// Detailed is an error that reads as its own sentence and matches its
// sentinel with errors.Is, so that a problem's detail is just the sentence.
type Detailed struct {
	Msg      string
	Sentinel error
}

func (e *Detailed) Error() string { return e.Msg }
func (e *Detailed) Unwrap() error { return e.Sentinel }

// Errorf returns a Detailed error.
func Errorf(sentinel error, format string, args ...any) error {
	return &Detailed{Msg: fmt.Sprintf(format, args...), Sentinel: sentinel}
}
