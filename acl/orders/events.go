package orders

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/acl/internal/legacyjson"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
)

// The monolith's event contract, as the ACL reads it (docs/events.md).
const (
	OrderAggregate    = "order"
	CustomerAggregate = "customer"
	ProductAggregate  = "product"
)

// The monolith's event types the ACL reads. The snapshots are what a
// backfill of the tables gives.
const (
	OrderPlaced    = "order.placed"
	OrderPaid      = "order.paid"
	OrderShipped   = "order.shipped"
	OrderCancelled = "order.cancelled"
	OrderSnapshot  = "order.snapshot"

	CustomerCreated  = "customer.created"
	CustomerChanged  = "customer.changed"
	CustomerDeleted  = "customer.deleted"
	CustomerSnapshot = "customer.snapshot"

	ProductCreated  = "product.created"
	ProductChanged  = "product.changed"
	ProductSnapshot = "product.snapshot"
)

// ErrMalformed is wrapped by the errors of legacy payloads that cannot be
// read even tolerantly; retrying cannot fix them.
var ErrMalformed = errors.New("malformed legacy payload")

// malformed is the error of event ev that cannot be read.
func malformed(ev changefeed.Event, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s: %s", ErrMalformed, ev.Type, ev.ID, fmt.Sprintf(format, args...))
}

type rawLine struct {
	LineNo         legacyjson.Int `json:"line_no"`
	SKU            string         `json:"sku"`
	ProductRef     string         `json:"product_ref"`
	ProductName    string         `json:"product_name"`
	UnitPriceCents legacyjson.Int `json:"unit_price_cents"`
	Quantity       legacyjson.Int `json:"quantity"`
	LineTotalCents legacyjson.Int `json:"line_total_cents"`
	Warehouse      string         `json:"warehouse"`
}

type rawOrder struct {
	ID            legacyjson.Int  `json:"id"`
	CustomerID    legacyjson.Int  `json:"customer_id"`
	CustomerEmail string          `json:"customer_email"`
	Status        legacyjson.Int  `json:"status"`
	Currency      string          `json:"currency"`
	TotalCents    legacyjson.Int  `json:"total_cents"`
	Lines         []rawLine       `json:"lines"`
	PlacedAt      legacyjson.Time `json:"placed_at"`
	PaidAt        legacyjson.Time `json:"paid_at"`
	ShippedAt     legacyjson.Time `json:"shipped_at"`
	CancelledAt   legacyjson.Time `json:"cancelled_at"`
	Version       legacyjson.Int  `json:"version"`
	UpdatedAt     legacyjson.Time `json:"updated_at"`
}

// DecodeLegacyOrder reads a legacy order payload, the monolith's HTTP JSON
// or an order event's payload, tolerantly: numbers may be strings, times
// in any legacy form, unknown fields are ignored, and lines may be missing
// (a snapshot of the orders table alone). The id, the customer and the
// status are required; an unknown status code is an *UnknownStatusError.
func DecodeLegacyOrder(payload []byte) (LegacyOrder, error) {
	var r rawOrder
	if err := json.Unmarshal(payload, &r); err != nil {
		return LegacyOrder{}, fmt.Errorf("%w: order: %v", ErrMalformed, err)
	}
	var errs []string
	for name, f := range map[string]legacyjson.Int{"id": r.ID, "customer_id": r.CustomerID, "status": r.Status} {
		if !f.Set {
			errs = append(errs, name+" is missing")
		}
	}
	if len(errs) > 0 {
		return LegacyOrder{}, fmt.Errorf("%w: order: %s", ErrMalformed, strings.Join(errs, "; "))
	}
	if _, err := StateOf(r.Status.V); err != nil {
		return LegacyOrder{}, fmt.Errorf("order %d: %w", r.ID.V, err)
	}
	o := LegacyOrder{
		ID: int64(r.ID.V), CustomerID: int64(r.CustomerID.V), CustomerEmail: r.CustomerEmail, Status: LegacyStatus(r.Status.V),
		Currency: r.Currency, TotalCents: int64(r.TotalCents.V), PlacedAt: r.PlacedAt.V,
		PaidAt: optional(r.PaidAt), ShippedAt: optional(r.ShippedAt), CancelledAt: optional(r.CancelledAt),
		Version: r.Version.V, UpdatedAt: r.UpdatedAt.V,
	}
	for _, l := range r.Lines {
		o.Lines = append(o.Lines, LegacyLine{LineNo: l.LineNo.V, SKU: l.SKU, ProductRef: l.ProductRef, ProductName: l.ProductName,
			UnitPriceCents: int64(l.UnitPriceCents.V), Quantity: l.Quantity.V, LineTotalCents: int64(l.LineTotalCents.V), Warehouse: l.Warehouse})
	}
	return o, nil
}

// DecodeOrder reads a legacy order payload into the service's model
// (DecodeLegacyOrder, then FromLegacy).
func DecodeOrder(payload []byte) (Order, error) {
	l, err := DecodeLegacyOrder(payload)
	if err != nil {
		return Order{}, err
	}
	return FromLegacy(l)
}

func optional(t legacyjson.Time) *time.Time {
	if t.V.IsZero() {
		return nil
	}
	v := t.V
	return &v
}

// CustomerStatus is a customer's status in the service's read model.
type CustomerStatus string

// The customer statuses: the monolith deletes customers (orders keep
// their copy of the e-mail), the read model keeps them as deleted.
const (
	ActiveCustomer  CustomerStatus = "active"
	DeletedCustomer CustomerStatus = "deleted"
)

// CustomerChange is a customer event, read tolerantly: what the orders
// service needs of a customer.
type CustomerChange struct {
	ID      int64
	Email   string
	Status  CustomerStatus
	Version int
	At      time.Time
}

type rawCustomer struct {
	ID           legacyjson.Int  `json:"id"`
	Email        string          `json:"email"`
	EmailAddress string          `json:"email_address"`
	Status       string          `json:"status"`
	Deleted      legacyjson.Bool `json:"deleted"`
	Version      legacyjson.Int  `json:"version"`
	UpdatedAt    legacyjson.Time `json:"updated_at"`
}

// DecodeCustomer reads a customer event. The id is the payload's, or the
// aggregate id; the e-mail is email, or email_address (the column's name
// before version 1 of the event), stored trimmed and in lower case; the
// status is the payload's when it has one (a later version may carry it),
// else deleted for customer.deleted and active otherwise. A deletion needs
// no e-mail; every other event does.
func DecodeCustomer(ev changefeed.Event) (CustomerChange, error) {
	var r rawCustomer
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return CustomerChange{}, malformed(ev, "%v", err)
	}
	c := CustomerChange{ID: int64(r.ID.V), Email: r.Email, Version: r.Version.V, At: r.UpdatedAt.V}
	if !r.ID.Set {
		id, err := strconv.ParseInt(ev.AggregateID, 10, 64)
		if err != nil {
			return CustomerChange{}, malformed(ev, "no customer id")
		}
		c.ID = id
	}
	if c.Email == "" {
		c.Email = r.EmailAddress
	}
	c.Email = strings.ToLower(strings.TrimSpace(c.Email))
	switch {
	case ev.Type == CustomerDeleted || r.Deleted.V || strings.EqualFold(r.Status, string(DeletedCustomer)):
		c.Status = DeletedCustomer
	default:
		c.Status = ActiveCustomer
	}
	if c.At.IsZero() {
		c.At = ev.OccurredAt.UTC()
	}
	if c.ID <= 0 {
		return CustomerChange{}, malformed(ev, "customer id %d is not positive", c.ID)
	}
	if c.Email == "" && c.Status != DeletedCustomer {
		return CustomerChange{}, malformed(ev, "email is missing")
	}
	return c, nil
}

// UpdateCustomerEmail is the command to set the e-mail copied onto every
// order of a customer: the service's answer to the legacy trait that
// orders carry the e-mail the customer had when they ordered.
type UpdateCustomerEmail struct {
	CustomerID int64
	Email      string
	// Version is the customer's version that gave the e-mail (0 when the
	// event had none), so that an order store can ignore an older one.
	Version int
	// CausationID is the id of the event that gave the command.
	CausationID string
}

// EmailCommand translates a customer event into the command that updates
// the e-mail on the customer's orders. ok is false for an event that
// changes no e-mail: a deletion (orders keep their copy) or an event of
// another kind.
func EmailCommand(ev changefeed.Event) (cmd UpdateCustomerEmail, ok bool, err error) {
	switch ev.Type {
	case CustomerCreated, CustomerChanged, CustomerSnapshot:
	default:
		return UpdateCustomerEmail{}, false, nil
	}
	c, err := DecodeCustomer(ev)
	if err != nil || c.Status == DeletedCustomer {
		return UpdateCustomerEmail{}, false, err
	}
	return UpdateCustomerEmail{CustomerID: c.ID, Email: c.Email, Version: c.Version, CausationID: ev.ID.String()}, true, nil
}

// PriceChange is a product event, read tolerantly: the catalog price of a
// SKU and whether it is for sale.
type PriceChange struct {
	SKU        string
	ProductRef string
	PriceCents int64
	Currency   string
	Active     bool
	Version    int
	At         time.Time
}

type rawProduct struct {
	ID         legacyjson.Int  `json:"id"`
	ProductRef string          `json:"product_ref"`
	SKU        string          `json:"sku"`
	PriceCents legacyjson.Int  `json:"price_cents"`
	Price      json.Number     `json:"price"`
	Currency   string          `json:"currency"`
	Active     legacyjson.Bool `json:"active"`
	Version    legacyjson.Int  `json:"version"`
	UpdatedAt  legacyjson.Time `json:"updated_at"`
}

// DecodePrice reads a product event. The SKU is stored in upper case; the
// reference is product_ref or derived from id (a snapshot of
// catalog_products has no product_ref column); the price is price_cents,
// or price in major units as an older payload had it; a missing currency
// reads as EUR and a missing active as true.
func DecodePrice(ev changefeed.Event) (PriceChange, error) {
	var r rawProduct
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return PriceChange{}, malformed(ev, "%v", err)
	}
	p := PriceChange{
		SKU: strings.ToUpper(strings.TrimSpace(r.SKU)), ProductRef: r.ProductRef, PriceCents: int64(r.PriceCents.V),
		Currency: strings.ToUpper(strings.TrimSpace(r.Currency)), Active: !r.Active.Set || r.Active.V,
		Version: r.Version.V, At: r.UpdatedAt.V,
	}
	if p.ProductRef == "" && r.ID.Set && r.ID.V > 0 {
		p.ProductRef = fmt.Sprintf("P-%06d", r.ID.V)
	}
	if p.ProductRef == "" {
		p.ProductRef = ev.AggregateID
	}
	if p.Currency == "" {
		p.Currency = "EUR"
	}
	if p.At.IsZero() {
		p.At = ev.OccurredAt.UTC()
	}
	var errs []string
	if !r.PriceCents.Set {
		cents, err := majorToCents(r.Price)
		if err != nil {
			errs = append(errs, err.Error())
		}
		p.PriceCents = cents
	}
	if p.SKU == "" {
		errs = append(errs, "sku is missing")
	}
	if p.PriceCents < 0 {
		errs = append(errs, fmt.Sprintf("price_cents %d is negative", p.PriceCents))
	}
	if len(errs) > 0 {
		return PriceChange{}, malformed(ev, "%s", strings.Join(errs, "; "))
	}
	return p, nil
}

// majorToCents reads a price in major units with at most two decimals,
// such as "12.90", exactly (domain.ParseCents).
func majorToCents(n json.Number) (int64, error) {
	s := strings.Trim(string(n), `"`)
	if s == "" {
		return 0, errors.New("price_cents is missing")
	}
	cents, err := domain.ParseCents(s)
	if err != nil {
		return 0, fmt.Errorf("price: %w", err)
	}
	return cents, nil
}
