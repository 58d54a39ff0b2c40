package domain

import (
	"fmt"
	"time"

	"github.com/stranglerkit/strangler/eventsource"
)

// The order's event types. Their current schema versions are in
// upcast.go: order.placed and order.imported are at version 2, the others
// at version 1.
const (
	// EventPlaced: the order was placed (Placed).
	EventPlaced = "order.placed"
	// EventImported: the order was copied from the monolith's tables by
	// the backfill, in whatever status it had there (Imported).
	EventImported = "order.imported"
	// EventStockReserved: the inventory service reserved the lines' stock.
	EventStockReserved = "order.stock_reserved"
	// EventStockReservationFailed: it could not (Failure).
	EventStockReservationFailed = "order.stock_reservation_failed"
	// EventStockReleased: the reservation was released, the compensation
	// of reserving.
	EventStockReleased = "order.stock_released"
	// EventPaymentAuthorized: the payment was authorized (Authorization).
	EventPaymentAuthorized = "order.payment_authorized"
	// EventPaymentDeclined: it was declined (Failure).
	EventPaymentDeclined = "order.payment_declined"
	// EventPaymentVoided: the authorization was voided, the compensation
	// of authorizing (Authorization).
	EventPaymentVoided = "order.payment_voided"
	// EventPaid: the order was paid (At).
	EventPaid = "order.paid"
	// EventShipped: the order was shipped (At).
	EventShipped = "order.shipped"
	// EventCancelled: the order was cancelled (Cancelled).
	EventCancelled = "order.cancelled"
	// EventCustomerEmailChanged: the customer's e-mail changed, which the
	// order keeps a copy of (EmailChanged).
	EventCustomerEmailChanged = "order.customer_email_changed"
)

// Placed is the payload of order.placed, version 2 (version 1 is in
// upcast.go).
type Placed struct {
	ID            int64     `json:"id"`
	CustomerID    int64     `json:"customer_id"`
	CustomerEmail string    `json:"customer_email"`
	Currency      string    `json:"currency"`
	TotalCents    int64     `json:"total_cents"`
	Lines         []Line    `json:"lines"`
	PlacedAt      time.Time `json:"placed_at"`
	// StockReserved and AuthorizationID, set by the placement saga, which
	// appends order.placed once both participants took part, say that the
	// lines' stock is reserved and the payment authorized; an order placed
	// before the steps ran has neither.
	StockReserved   bool   `json:"stock_reserved,omitempty"`
	AuthorizationID string `json:"authorization_id,omitempty"`
}

// Imported is the payload of order.imported: the order as the monolith
// held it.
type Imported struct {
	Placed
	Status      Status     `json:"status"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
	ShippedAt   *time.Time `json:"shipped_at,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	// LegacyVersion is the monolith row's version when it was copied.
	LegacyVersion int `json:"legacy_version"`
}

// Failure is the payload of the events that record a refusal.
type Failure struct {
	Reason string `json:"reason"`
}

// Authorization is the payload of order.payment_authorized and
// order.payment_voided.
type Authorization struct {
	AuthorizationID string `json:"authorization_id"`
	AmountCents     int64  `json:"amount_cents"`
}

// At is the payload of the events that only stamp a time.
type At struct {
	At time.Time `json:"at"`
}

// Cancelled is the payload of order.cancelled.
type Cancelled struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EmailChanged is the payload of order.customer_email_changed.
type EmailChanged struct {
	Email string `json:"email"`
}

// Apply folds one event into the order's state. It is the one definition
// of what each event means: the aggregate, its snapshots and the read
// models all fold with it. It reads each type at its current schema
// version only; the store brings older ones up to it (Upcasters), and an
// event at another version is an error, not a guess.
func Apply(o Order, ev eventsource.Event) (Order, error) {
	if cur, v := SchemaVersion(ev.Type), max(ev.SchemaVersion, 1); cur != 0 && v != cur {
		return o, fmt.Errorf("order %s: %s v%d is at schema version %d, not %d: read it through the order upcasters", ev.AggregateID, ev.Type, ev.Version, v, cur)
	}
	switch ev.Type {
	case EventPlaced:
		var p Placed
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o = placed(p)
		if p.StockReserved {
			o.Stock = StepDone
		}
		if p.AuthorizationID != "" {
			o.Payment, o.AuthorizationID = StepDone, p.AuthorizationID
		}
	case EventImported:
		var p Imported
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o = placed(p.Placed)
		o.Status, o.PaidAt, o.ShippedAt, o.CancelledAt = p.Status, utc(p.PaidAt), utc(p.ShippedAt), utc(p.CancelledAt)
		// The monolith reserved the stock of every order it placed, and
		// released it on cancelling; it knows no payment authorizations.
		o.Stock = StepDone
		if p.Status == StatusCancelled {
			o.Stock = StepReleased
		}
	case EventStockReserved:
		o.Stock = StepDone
	case EventStockReservationFailed:
		o.Stock = StepFailed
	case EventStockReleased:
		o.Stock = StepReleased
	case EventPaymentAuthorized:
		var p Authorization
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o.Payment, o.AuthorizationID = StepDone, p.AuthorizationID
	case EventPaymentDeclined:
		o.Payment = StepFailed
	case EventPaymentVoided:
		o.Payment = StepReleased
	case EventPaid:
		var p At
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o.Status, o.PaidAt = StatusPaid, utc(&p.At)
	case EventShipped:
		var p At
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o.Status, o.ShippedAt = StatusShipped, utc(&p.At)
	case EventCancelled:
		var p Cancelled
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o.Status, o.CancelledAt, o.CancelReason = StatusCancelled, utc(&p.At), p.Reason
	case EventCustomerEmailChanged:
		var p EmailChanged
		if err := ev.Decode(&p); err != nil {
			return o, err
		}
		o.CustomerEmail = p.Email
	default:
		return o, fmt.Errorf("order %s: unknown event type %q", ev.AggregateID, ev.Type)
	}
	o.Version = ev.Version
	o.UpdatedAt = ev.OccurredAt.UTC()
	return o, nil
}

func placed(p Placed) Order {
	return Order{ID: p.ID, CustomerID: p.CustomerID, CustomerEmail: p.CustomerEmail, Status: StatusPlaced, Currency: p.Currency,
		TotalCents: p.TotalCents, Lines: p.Lines, PlacedAt: p.PlacedAt.UTC()}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
