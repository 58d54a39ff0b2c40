package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/eventsource"
)

// The commands. Each checks the order's state and returns the events it
// causes: none when the order is already as the command wants it (a retry
// of a step that took effect), or an error that refuses it.

// Place places a new order with the given lines and totals.
func (o Order) Place(p Placed) ([]eventsource.Event, error) {
	if o.Exists() {
		return nil, fmt.Errorf("order %d: %w", p.ID, ErrExists)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	p.PlacedAt = p.PlacedAt.UTC()
	return events(EventPlaced, p)
}

// Import records an order as the monolith holds it. An order that exists
// already is left as it is, so that a backfill can run again.
func (o Order) Import(p Imported) ([]eventsource.Event, error) {
	if o.Exists() {
		return nil, nil
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	if !p.Status.Valid() {
		return nil, fmt.Errorf("%w: order %d: status %q", ErrInvalid, p.ID, p.Status)
	}
	return events(EventImported, p)
}

// ReserveStock records that the order's stock is reserved. It is refused
// once the reservation failed or was released, so that a reservation that
// answers after its compensation ran does not count.
func (o Order) ReserveStock() ([]eventsource.Event, error) {
	if err := o.must(); err != nil || o.Stock == StepDone {
		return nil, err
	}
	if o.Stock != StepPending || o.Status != StatusPlaced {
		return nil, o.refuse("stock reserved")
	}
	return events(EventStockReserved, struct{}{})
}

// FailStockReservation records that the stock could not be reserved.
func (o Order) FailStockReservation(reason string) ([]eventsource.Event, error) {
	if err := o.must(); err != nil || o.Stock == StepFailed {
		return nil, err
	}
	if o.Stock != StepPending {
		return nil, o.refuse("stock reservation failed")
	}
	return events(EventStockReservationFailed, Failure{Reason: reason})
}

// ReleaseStock records that the reservation was released. Releasing a
// reservation that failed changes nothing; releasing one still pending
// records the release, so that the reservation, should it answer later,
// is refused.
func (o Order) ReleaseStock() ([]eventsource.Event, error) {
	if err := o.must(); err != nil || o.Stock == StepReleased || o.Stock == StepFailed {
		return nil, err
	}
	return events(EventStockReleased, struct{}{})
}

// AuthorizePayment records the payment's authorization.
func (o Order) AuthorizePayment(a Authorization) ([]eventsource.Event, error) {
	if err := o.must(); err != nil {
		return nil, err
	}
	if o.Payment == StepDone && o.AuthorizationID == a.AuthorizationID {
		return nil, nil
	}
	if o.Payment != StepPending || o.Status != StatusPlaced {
		return nil, o.refuse("payment authorized")
	}
	if a.AuthorizationID == "" {
		return nil, fmt.Errorf("%w: order %d: authorization id is empty", ErrInvalid, o.ID)
	}
	return events(EventPaymentAuthorized, a)
}

// DeclinePayment records that the payment was declined.
func (o Order) DeclinePayment(reason string) ([]eventsource.Event, error) {
	if err := o.must(); err != nil || o.Payment == StepFailed {
		return nil, err
	}
	if o.Payment != StepPending {
		return nil, o.refuse("payment declined")
	}
	return events(EventPaymentDeclined, Failure{Reason: reason})
}

// VoidPayment records that the authorization was voided, with the same
// rules as ReleaseStock.
func (o Order) VoidPayment() ([]eventsource.Event, error) {
	if err := o.must(); err != nil || o.Payment == StepReleased || o.Payment == StepFailed {
		return nil, err
	}
	return events(EventPaymentVoided, Authorization{AuthorizationID: o.AuthorizationID})
}

// Pay marks a placed order paid.
func (o Order) Pay(at time.Time) ([]eventsource.Event, error) {
	if err := o.move(StatusPaid); err != nil {
		return nil, err
	}
	return events(EventPaid, At{At: at.UTC()})
}

// Ship marks a paid order shipped.
func (o Order) Ship(at time.Time) ([]eventsource.Event, error) {
	if err := o.move(StatusShipped); err != nil {
		return nil, err
	}
	return events(EventShipped, At{At: at.UTC()})
}

// Cancel cancels a placed or paid order.
func (o Order) Cancel(reason string, at time.Time) ([]eventsource.Event, error) {
	if err := o.move(StatusCancelled); err != nil {
		return nil, err
	}
	return events(EventCancelled, Cancelled{Reason: reason, At: at.UTC()})
}

// ChangeCustomerEmail updates the order's copy of its customer's e-mail.
func (o Order) ChangeCustomerEmail(email string) ([]eventsource.Event, error) {
	if err := o.must(); err != nil || o.CustomerEmail == email {
		return nil, err
	}
	if strings.TrimSpace(email) == "" {
		return nil, fmt.Errorf("%w: order %d: e-mail is empty", ErrInvalid, o.ID)
	}
	return events(EventCustomerEmailChanged, EmailChanged{Email: email})
}

func (o Order) must() error {
	if !o.Exists() {
		return ErrNotFound
	}
	return nil
}

func (o Order) move(to Status) error {
	if err := o.must(); err != nil {
		return err
	}
	if !slices.Contains(From(to), o.Status) {
		return &TransitionError{ID: o.ID, From: o.Status, To: to}
	}
	return nil
}

func (o Order) refuse(what string) error {
	return fmt.Errorf("order %d (%s, stock %q, payment %q): %s: %w", o.ID, o.Status, o.Stock, o.Payment, what, ErrTransition)
}

// events is the one event of eventType with payload, at the type's
// current schema version.
func events(eventType string, payload any) ([]eventsource.Event, error) {
	ev, err := eventsource.NewEvent(eventType, payload)
	if err != nil {
		return nil, err
	}
	ev.SchemaVersion = SchemaVersion(eventType)
	return []eventsource.Event{ev}, nil
}

// check reports every invalid field of a placed order.
func (p Placed) check() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if p.ID <= 0 {
		add("id must be positive")
	}
	if p.CustomerID <= 0 {
		add("customer_id must be positive")
	}
	if len(p.Currency) != 3 {
		add("currency %q must be a 3-letter code", p.Currency)
	}
	if p.PlacedAt.IsZero() {
		add("placed_at is empty")
	}
	switch n := len(p.Lines); {
	case n == 0:
		add("lines must hold at least one line")
	case n > MaxLines:
		add("lines must hold at most %d lines, not %d", MaxLines, n)
	}
	var total int64
	seen := map[string]bool{}
	for i, l := range p.Lines {
		switch {
		case l.LineNo != i+1:
			add("lines[%d].line_no is %d, want %d", i, l.LineNo, i+1)
		case l.SKU == "" || seen[l.SKU]:
			add("lines[%d].sku %q is empty or repeated", i, l.SKU)
		case l.Quantity < 1 || l.Quantity > MaxQuantity:
			add("lines[%d].quantity must be between 1 and %d, not %d", i, MaxQuantity, l.Quantity)
		case l.UnitPriceCents < 0 || l.LineTotalCents != l.UnitPriceCents*int64(l.Quantity):
			add("lines[%d].line_total_cents %d is not %d × %d", i, l.LineTotalCents, l.UnitPriceCents, l.Quantity)
		}
		seen[l.SKU] = true
		total += l.LineTotalCents
	}
	if total != p.TotalCents {
		add("total_cents %d is not the lines' sum %d", p.TotalCents, total)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: order %d: %s", ErrInvalid, p.ID, strings.Join(errs, "; "))
	}
	return nil
}
