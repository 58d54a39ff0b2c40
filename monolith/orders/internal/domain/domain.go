// Package domain holds the orders module's contract types, its status
// lifecycle, errors and input rules. The module's api.go re-exports the
// public part.
package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is an order's status, as the legacy integer codes the orders table
// and API use.
type Status int

// The statuses. An order is placed, then paid, then shipped; it can be
// cancelled while placed or paid.
const (
	StatusPlaced    Status = 10
	StatusPaid      Status = 20
	StatusShipped   Status = 30
	StatusCancelled Status = 90
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusPlaced, StatusPaid, StatusShipped, StatusCancelled}

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusPlaced:
		return "placed"
	case StatusPaid:
		return "paid"
	case StatusShipped:
		return "shipped"
	case StatusCancelled:
		return "cancelled"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
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

// Order is an order as the module's API returns it.
type Order struct {
	ID         int64 `json:"id"`
	CustomerID int64 `json:"customer_id"`
	// CustomerEmail is a copy taken when the order was placed (legacy).
	CustomerEmail string `json:"customer_email"`
	// Status is the legacy integer code: 10 placed, 20 paid, 30 shipped,
	// 90 cancelled.
	Status   Status `json:"status"`
	Currency string `json:"currency"`
	// TotalCents is the sum of the lines, stored redundantly (legacy).
	TotalCents  int64      `json:"total_cents"`
	Lines       []Line     `json:"lines"`
	PlacedAt    time.Time  `json:"placed_at"`
	PaidAt      *time.Time `json:"paid_at"`
	ShippedAt   *time.Time `json:"shipped_at"`
	CancelledAt *time.Time `json:"cancelled_at"`
	// Version counts the order's changes, starting at 1.
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Line is one line of an order. It copies what the product was when the
// order was placed, and records the warehouse holding its units.
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

// NewOrder is the input of Place.
type NewOrder struct {
	CustomerID int64     `json:"customer_id"`
	Lines      []NewLine `json:"lines"`
}

// NewLine is one line of a new order.
type NewLine struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Query filters and pages List.
type Query struct {
	// CustomerID, when not 0, matches one customer's orders.
	CustomerID int64
	// Status, when not 0, matches one status.
	Status Status
	// Limit is the page size: 0 means 20, at most 100.
	Limit int
	// Cursor is the next_cursor of the previous page, or "" for the first.
	Cursor string
}

// Page is one page of orders, newest first.
type Page struct {
	Items      []Order `json:"items"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// The module's errors that callers branch on.
var (
	ErrNotFound        = errors.New("no such order")
	ErrUnknownCustomer = errors.New("unknown customer")
	ErrUnknownSKU      = errors.New("unknown SKU")
	ErrInactiveProduct = errors.New("product not for sale")
	ErrOutOfStock      = errors.New("insufficient stock")
	// ErrTransition: the order's status does not allow the change.
	ErrTransition = errors.New("status does not allow this")
)

// Limits on input, also stated in the OpenAPI document.
const (
	MaxLines    = 50
	MaxQuantity = 1000
)

// FieldError is one invalid field of a new order.
type FieldError struct{ Field, Message string }

// Check checks a new order's shape and normalises its SKUs. It returns the
// invalid fields; an empty result means the order may be placed, subject to
// the customer, products and stock existing.
func (o *NewOrder) Check(normalizeSKU func(string) string) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if o.CustomerID <= 0 {
		add("customer_id", "must be a positive customer id")
	}
	switch n := len(o.Lines); {
	case n == 0:
		add("lines", "must hold at least one line")
	case n > MaxLines:
		add("lines", "must hold at most %d lines, not %d", MaxLines, n)
	}
	first := map[string]int{}
	for i := range o.Lines {
		l := &o.Lines[i]
		l.SKU = normalizeSKU(l.SKU)
		field := "lines[" + strconv.Itoa(i) + "]"
		if l.SKU == "" {
			add(field+".sku", "is required")
		} else if j, dup := first[l.SKU]; dup {
			add(field+".sku", "repeats lines[%d]; order %s once with the total quantity", j, l.SKU)
		} else {
			first[l.SKU] = i
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			add(field+".quantity", "must be between 1 and %d, not %d", MaxQuantity, l.Quantity)
		}
	}
	return errs
}

// ParseStatus reads a status code such as "20".
func ParseStatus(s string) (Status, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || !Status(n).Valid() {
		return 0, fmt.Errorf("status must be one of 10 (placed), 20 (paid), 30 (shipped), 90 (cancelled), not %q", s)
	}
	return Status(n), nil
}
