// Package orders is the anti-corruption layer between the shop monolith's
// legacy orders model and the orders service's model. It is the only code
// that knows both, and it translates:
//
//   - the legacy integer status codes (10 placed, 20 paid, 30 shipped,
//     90 cancelled) and the service's named states, both ways; an unknown
//     code or state is an *UnknownStatusError or *UnknownStateError, never
//     a panic;
//   - the legacy order payloads (the monolith's HTTP JSON and its order
//     events) into the service's Order, and back, deriving the redundant
//     legacy totals;
//   - the monolith's customer and product events into the service's local
//     read models (customers: id, e-mail, status; catalog prices: SKU →
//     price, active) and into commands that keep the e-mail copied onto a
//     customer's orders up to date (ReadModels, EmailCommand), filled
//     first by a backfill of the monolith's rows (BackfillJobs);
//   - order ids: the legacy integer id is the service's aggregate id, so
//     that clients keep the ids they know, and orders placed on the
//     service take ids from a reserved range, 10¹² up, past every id it
//     has seen (IDs).
//   - the orders themselves, both ways, for the phases of the orders plan:
//     a backfill of the monolith's orders with their lines
//     (OrdersBackfillJob, LinesMap) and its live order events become the
//     service's order.imported and status events (Forward), and the
//     service's own events after the ownership flip become rows of the
//     monolith's orders tables (BackSync); each side's changes carry its
//     origin, and neither sync applies the other's echo;
//   - the comparison of the two copies, the monolith's orders and the
//     service's read model, that `strangler verify orders` runs
//     (VerifyCheck, VerifyRow).
//
// Everything that reads legacy data is a tolerant reader: unknown fields
// are ignored, optional fields may be missing, numbers may come as JSON
// numbers or strings, times in the forms the drivers and backfill give.
package orders

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// LegacyStatus is the monolith's integer order status code.
type LegacyStatus int

// The legacy status codes.
const (
	LegacyPlaced    LegacyStatus = 10
	LegacyPaid      LegacyStatus = 20
	LegacyShipped   LegacyStatus = 30
	LegacyCancelled LegacyStatus = 90
)

// State is an order's state in the service's model.
type State string

// The service's states.
const (
	StatePlaced    State = "placed"
	StatePaid      State = "paid"
	StateShipped   State = "shipped"
	StateCancelled State = "cancelled"
)

// statusPairs is the one table of the mapping, in lifecycle order.
var statusPairs = []struct {
	code  LegacyStatus
	state State
}{
	{LegacyPlaced, StatePlaced},
	{LegacyPaid, StatePaid},
	{LegacyShipped, StateShipped},
	{LegacyCancelled, StateCancelled},
}

// ErrUnknownStatus is matched (errors.Is) by *UnknownStatusError and
// *UnknownStateError.
var ErrUnknownStatus = errors.New("unknown order status")

// UnknownStatusError is a legacy status code the mapping does not know.
type UnknownStatusError struct{ Code int }

func (e *UnknownStatusError) Error() string {
	return fmt.Sprintf("legacy order status %d is not one of 10 (placed), 20 (paid), 30 (shipped), 90 (cancelled)", e.Code)
}

// Unwrap makes the error match ErrUnknownStatus.
func (e *UnknownStatusError) Unwrap() error { return ErrUnknownStatus }

// UnknownStateError is a service state the mapping does not know.
type UnknownStateError struct{ State State }

func (e *UnknownStateError) Error() string {
	return fmt.Sprintf("order state %q is not one of placed, paid, shipped, cancelled", string(e.State))
}

// Unwrap makes the error match ErrUnknownStatus.
func (e *UnknownStateError) Unwrap() error { return ErrUnknownStatus }

// StateOf maps a legacy status code to the service's state.
func StateOf(code int) (State, error) {
	for _, p := range statusPairs {
		if int(p.code) == code {
			return p.state, nil
		}
	}
	return "", &UnknownStatusError{Code: code}
}

// CodeOf maps a service state to the legacy status code.
func CodeOf(s State) (LegacyStatus, error) {
	for _, p := range statusPairs {
		if p.state == s {
			return p.code, nil
		}
	}
	return 0, &UnknownStateError{State: s}
}

// States lists the service's states in lifecycle order.
func States() []State {
	out := make([]State, len(statusPairs))
	for i, p := range statusPairs {
		out[i] = p.state
	}
	return out
}

// LegacyOrder is an order as the monolith's HTTP API and order events
// carry it (docs/api/shop.openapi.yaml, Order).
type LegacyOrder struct {
	ID            int64        `json:"id"`
	CustomerID    int64        `json:"customer_id"`
	CustomerEmail string       `json:"customer_email"`
	Status        LegacyStatus `json:"status"`
	Currency      string       `json:"currency"`
	TotalCents    int64        `json:"total_cents"`
	Lines         []LegacyLine `json:"lines"`
	PlacedAt      time.Time    `json:"placed_at"`
	PaidAt        *time.Time   `json:"paid_at"`
	ShippedAt     *time.Time   `json:"shipped_at"`
	CancelledAt   *time.Time   `json:"cancelled_at"`
	Version       int          `json:"version"`
	UpdatedAt     time.Time    `json:"updated_at"`
}

// LegacyLine is a line of a LegacyOrder, and a row of the monolith's
// order_lines, as the backfill and verify read them.
type LegacyLine struct {
	LineNo         int    `json:"line_no" gorm:"column:line_no"`
	SKU            string `json:"sku" gorm:"column:sku"`
	ProductRef     string `json:"product_ref" gorm:"column:product_ref"`
	ProductName    string `json:"product_name" gorm:"column:product_name"`
	UnitPriceCents int64  `json:"unit_price_cents" gorm:"column:unit_price_cents"`
	Quantity       int    `json:"quantity" gorm:"column:quantity"`
	LineTotalCents int64  `json:"line_total_cents" gorm:"column:line_total_cents"`
	Warehouse      string `json:"warehouse" gorm:"column:warehouse_code"`
}

// Order is an order in the orders service's model: a named state, the
// legacy id as its aggregate id, and no redundant totals.
type Order struct {
	ID         int64 `json:"id"`
	CustomerID int64 `json:"customer_id"`
	// CustomerEmail is the copy of the customer's e-mail the order
	// carries, kept up to date by customer events (EmailCommand).
	CustomerEmail string     `json:"customer_email"`
	State         State      `json:"state"`
	Currency      string     `json:"currency"`
	Lines         []Line     `json:"lines"`
	PlacedAt      time.Time  `json:"placed_at"`
	PaidAt        *time.Time `json:"paid_at,omitempty"`
	ShippedAt     *time.Time `json:"shipped_at,omitempty"`
	CancelledAt   *time.Time `json:"cancelled_at,omitempty"`
	// Version is the legacy version counter, the aggregate's version.
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Line is a line of an Order.
type Line struct {
	No             int    `json:"no"`
	SKU            string `json:"sku"`
	ProductRef     string `json:"product_ref"`
	ProductName    string `json:"product_name"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	Quantity       int    `json:"quantity"`
	Warehouse      string `json:"warehouse"`
}

// TotalCents is the sum of the lines.
func (o Order) TotalCents() int64 {
	var sum int64
	for _, l := range o.Lines {
		sum += l.UnitPriceCents * int64(l.Quantity)
	}
	return sum
}

// ErrInconsistent is wrapped by the errors of a legacy order whose
// redundant columns contradict its lines.
var ErrInconsistent = errors.New("inconsistent legacy order")

// FromLegacy translates a legacy order into the service's model. The
// redundant totals must agree with the lines: a line total other than
// price × quantity, or an order total other than the sum, wraps
// ErrInconsistent (a legacy order without lines, such as a snapshot of
// the orders table alone, keeps no total to check).
func FromLegacy(l LegacyOrder) (Order, error) {
	st, err := StateOf(int(l.Status))
	if err != nil {
		return Order{}, fmt.Errorf("order %d: %w", l.ID, err)
	}
	if err := CheckID(l.ID); err != nil {
		return Order{}, err
	}
	o := Order{
		ID: l.ID, CustomerID: l.CustomerID, CustomerEmail: l.CustomerEmail, State: st, Currency: l.Currency,
		PlacedAt: l.PlacedAt.UTC(), PaidAt: utc(l.PaidAt), ShippedAt: utc(l.ShippedAt), CancelledAt: utc(l.CancelledAt),
		Version: l.Version, UpdatedAt: l.UpdatedAt.UTC(),
	}
	var errs []error
	for i, ll := range l.Lines {
		if want := ll.UnitPriceCents * int64(ll.Quantity); ll.LineTotalCents != want {
			errs = append(errs, fmt.Errorf("line %d: line_total_cents %d is not %d × %d", i+1, ll.LineTotalCents, ll.UnitPriceCents, ll.Quantity))
		}
		no := ll.LineNo
		if no == 0 {
			no = i + 1
		}
		o.Lines = append(o.Lines, Line{No: no, SKU: ll.SKU, ProductRef: ll.ProductRef, ProductName: ll.ProductName,
			UnitPriceCents: ll.UnitPriceCents, Quantity: ll.Quantity, Warehouse: ll.Warehouse})
	}
	if len(l.Lines) > 0 && o.TotalCents() != l.TotalCents {
		errs = append(errs, fmt.Errorf("total_cents %d is not the sum of the lines, %d", l.TotalCents, o.TotalCents()))
	}
	if len(errs) > 0 {
		return Order{}, fmt.Errorf("%w %d: %w", ErrInconsistent, l.ID, errors.Join(errs...))
	}
	return o, nil
}

// ToLegacy translates a service order into the legacy model, deriving the
// status code and the redundant totals.
func ToLegacy(o Order) (LegacyOrder, error) {
	code, err := CodeOf(o.State)
	if err != nil {
		return LegacyOrder{}, fmt.Errorf("order %d: %w", o.ID, err)
	}
	l := LegacyOrder{
		ID: o.ID, CustomerID: o.CustomerID, CustomerEmail: o.CustomerEmail, Status: code, Currency: o.Currency,
		TotalCents: o.TotalCents(), Lines: []LegacyLine{},
		PlacedAt: o.PlacedAt.UTC(), PaidAt: utc(o.PaidAt), ShippedAt: utc(o.ShippedAt), CancelledAt: utc(o.CancelledAt),
		Version: o.Version, UpdatedAt: o.UpdatedAt.UTC(),
	}
	lines := slices.Clone(o.Lines)
	slices.SortFunc(lines, func(a, b Line) int { return a.No - b.No })
	for _, ln := range lines {
		l.Lines = append(l.Lines, LegacyLine{LineNo: ln.No, SKU: ln.SKU, ProductRef: ln.ProductRef, ProductName: ln.ProductName,
			UnitPriceCents: ln.UnitPriceCents, Quantity: ln.Quantity, LineTotalCents: ln.UnitPriceCents * int64(ln.Quantity), Warehouse: ln.Warehouse})
	}
	return l, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
