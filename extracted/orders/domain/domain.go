// Package domain is the orders service's order aggregate, event sourced:
// an order's events are its source of truth, its state is their fold
// (Apply), and each command (Place, Pay, Ship, Cancel, ...) checks the
// state it is given and returns the events it causes, or an error that
// refuses it. The lifecycle is the monolith's: placed, then paid, then
// shipped; cancelled while placed or paid.
//
// The state uses named statuses; the anti-corruption layer maps them to
// the monolith's integer codes (10, 20, 30, 90). An order's id is the id
// clients see, the monolith's order id for orders it placed.
package domain

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Source is the service's name in its events.
const Source = "orders-service"

// AggregateType is the order streams' type in the event store and the
// outbox (topic <prefix>.order).
const AggregateType = "order"

// Status is an order's place in its lifecycle.
type Status string

// The statuses. An order is placed, then paid, then shipped; it can be
// cancelled while placed or paid.
const (
	StatusPlaced    Status = "placed"
	StatusPaid      Status = "paid"
	StatusShipped   Status = "shipped"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusPlaced, StatusPaid, StatusShipped, StatusCancelled}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPlaced, StatusPaid, StatusShipped, StatusCancelled:
		return true
	}
	return false
}

// Open reports whether an order in status s holds reserved stock.
func (s Status) Open() bool { return s == StatusPlaced || s == StatusPaid }

// From lists the statuses an order may move to s from.
func From(s Status) []Status {
	switch s {
	case StatusPaid:
		return []Status{StatusPlaced}
	case StatusShipped:
		return []Status{StatusPaid}
	case StatusCancelled:
		return []Status{StatusPlaced, StatusPaid}
	}
	return nil
}

// Order is an order's state: the fold of its events.
type Order struct {
	ID            int64      `json:"id"`
	CustomerID    int64      `json:"customer_id"`
	CustomerEmail string     `json:"customer_email"`
	Status        Status     `json:"status"`
	Currency      string     `json:"currency"`
	TotalCents    int64      `json:"total_cents"`
	Lines         []Line     `json:"lines"`
	PlacedAt      time.Time  `json:"placed_at"`
	PaidAt        *time.Time `json:"paid_at,omitempty"`
	ShippedAt     *time.Time `json:"shipped_at,omitempty"`
	CancelledAt   *time.Time `json:"cancelled_at,omitempty"`
	// Stock is where the order's stock reservation stands.
	Stock Step `json:"stock"`
	// Payment is where the order's payment authorization stands.
	Payment Step `json:"payment"`
	// AuthorizationID is the payment authorization, once authorized.
	AuthorizationID string `json:"authorization_id,omitempty"`
	// CancelReason says why the order was cancelled.
	CancelReason string `json:"cancel_reason,omitempty"`
	// Version is the order stream's version: how many events it has.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Exists reports whether the order has been placed or imported.
func (o Order) Exists() bool { return o.Version > 0 }

// Step is where one participant's part of placing an order stands.
type Step string

// The steps' states. A step is pending until its participant answers,
// and released once its compensation ran.
const (
	StepPending  Step = ""
	StepDone     Step = "done"
	StepFailed   Step = "failed"
	StepReleased Step = "released"
)

// Line is one line of an order, with what the product was when the order
// was placed and the warehouse that holds its units.
type Line struct {
	LineNo         int    `json:"line_no"`
	SKU            string `json:"sku"`
	ProductRef     string `json:"product_ref"`
	ProductName    string `json:"product_name"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	Quantity       int    `json:"quantity"`
	LineTotalCents int64  `json:"line_total_cents"`
	Warehouse      string `json:"warehouse"`
}

// The errors that callers branch on.
var (
	// ErrNotFound: no order has the id.
	ErrNotFound = errors.New("no such order")
	// ErrExists: an order with the id was placed already.
	ErrExists = errors.New("order exists")
	// ErrTransition: the order's status does not allow the change.
	ErrTransition = errors.New("status does not allow this")
	// ErrInvalid: the command's input is not a valid order.
	ErrInvalid = errors.New("invalid order")
)

// Limits on input, as the monolith's.
const (
	MaxLines    = 50
	MaxQuantity = 1000
)

// TransitionError says which change an order's status refused.
type TransitionError struct {
	ID       int64
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("order %d is %s: %s", e.ID, e.From, "cannot become "+string(e.To))
}

// Unwrap makes a TransitionError match ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// AggregateID is the order's id in the event store.
func AggregateID(id int64) string { return strconv.FormatInt(id, 10) }
