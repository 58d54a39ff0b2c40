package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/stranglerkit/strangler/eventsource"
)

// schemaVersions are the current schema versions of the order events: the
// ones the commands write and Apply reads.
//
// order.placed and order.imported are at version 2. Version 1, the shape
// of the service's first release, carried money as the monolith's early
// product events did, in major units as decimal strings (total, and each
// line's unit_price and line_total, "12.90") and no currency, as the shop
// then sold in euros only. Version 2 carries minor units as integers
// (total_cents, unit_price_cents, line_total_cents) and the currency, so
// that no reader parses decimals and an order in another currency can be
// told apart. Every other event type is at version 1.
var schemaVersions = map[string]int{
	EventPlaced:                 2,
	EventImported:               2,
	EventStockReserved:          1,
	EventStockReservationFailed: 1,
	EventStockReleased:          1,
	EventPaymentAuthorized:      1,
	EventPaymentDeclined:        1,
	EventPaymentVoided:          1,
	EventPaid:                   1,
	EventShipped:                1,
	EventCancelled:              1,
	EventCustomerEmailChanged:   1,
}

// SchemaVersion is the current schema version of eventType, 0 for a type
// that is not an order event.
func SchemaVersion(eventType string) int { return schemaVersions[eventType] }

// Upcasters returns the order events' upcasters, for the event store and
// for any consumer of the events' outbox copies: order.placed and
// order.imported from version 1 to 2, and every order event type declared
// at its current version, so that an event a newer release wrote is
// refused (*eventsource.UnknownVersionError) rather than folded as if it
// were the version this release knows.
func Upcasters() *eventsource.Upcasters {
	up := &eventsource.Upcasters{}
	for t, v := range schemaVersions {
		up.Current(t, v)
	}
	up.Register(EventPlaced, 1, upcastMoneyV1)
	up.Register(EventImported, 1, upcastMoneyV1)
	return up
}

// DefaultCurrencyV1 is the currency of the orders whose events are at
// version 1, which had none.
const DefaultCurrencyV1 = "EUR"

// upcastMoneyV1 turns a version 1 payload of order.placed or
// order.imported into version 2: total becomes total_cents, each line's
// unit_price and line_total become unit_price_cents and line_total_cents,
// and a missing currency is DefaultCurrencyV1. Every other field is kept
// as it is. An amount that is missing or not a decimal with at most two
// places is an error: the event cannot be read, and guessing would be
// reading it wrong.
func upcastMoneyV1(payload json.RawMessage) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("v1 payload: %w", err)
	}
	if err := moveCents(p, "total", "total_cents"); err != nil {
		return nil, err
	}
	if _, ok := p["currency"]; !ok {
		p["currency"], _ = json.Marshal(DefaultCurrencyV1)
	}
	var lines []map[string]json.RawMessage
	if raw, ok := p["lines"]; ok {
		if err := json.Unmarshal(raw, &lines); err != nil {
			return nil, fmt.Errorf("v1 payload: lines: %w", err)
		}
	}
	for i, l := range lines {
		for _, f := range [][2]string{{"unit_price", "unit_price_cents"}, {"line_total", "line_total_cents"}} {
			if err := moveCents(l, f[0], f[1]); err != nil {
				return nil, fmt.Errorf("lines[%d]: %w", i, err)
			}
		}
	}
	if lines != nil {
		raw, err := json.Marshal(lines)
		if err != nil {
			return nil, err
		}
		p["lines"] = raw
	}
	return json.Marshal(p)
}

// moveCents replaces the decimal amount at key from in p with its minor
// units at key to.
func moveCents(p map[string]json.RawMessage, from, to string) error {
	raw, ok := p[from]
	if !ok {
		return fmt.Errorf("v1 payload: %s is missing", from)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("v1 payload: %s is %s, not a decimal string", from, raw)
	}
	cents, err := ParseCents(s)
	if err != nil {
		return fmt.Errorf("v1 payload: %s: %w", from, err)
	}
	delete(p, from)
	p[to], _ = json.Marshal(cents)
	return nil
}

// ErrAmount is wrapped by ParseCents's errors.
var ErrAmount = errors.New("not an amount")

// ParseCents reads an amount in major units with at most two decimals,
// such as "12.90", "-0.5" or "7", exactly into minor units.
func ParseCents(s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(digits, ".")
	switch {
	case whole == "" || !allDigits(whole) || !allDigits(frac) || (dot && frac == ""):
		return 0, fmt.Errorf("%w: %q", ErrAmount, s)
	case len(frac) > 2:
		return 0, fmt.Errorf("%w: %q has more than two decimals", ErrAmount, s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	f, _ := strconv.ParseInt(frac, 10, 64)
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (math.MaxInt64-f)/100 {
		return 0, fmt.Errorf("%w: %q is out of range", ErrAmount, s)
	}
	cents := w*100 + f
	if len(digits) < len(s) {
		cents = -cents
	}
	return cents, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
