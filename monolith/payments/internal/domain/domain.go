// Package domain holds the payments module's contract types, errors and
// input rules. The module's api.go re-exports the public part.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stranglerkit/strangler/httpx"
)

// Status is an authorization's state.
type Status string

// The statuses. An authorization is authorized, then captured (the order
// is paid) or voided (the compensation); one over the customer's limit is
// declined. A void for a key that was never authorized is recorded as
// voided with no authorized_at, so that a late authorization with that key
// is refused.
const (
	StatusAuthorized Status = "authorized"
	StatusDeclined   Status = "declined"
	StatusVoided     Status = "voided"
	StatusCaptured   Status = "captured"
)

// Authorization is a hold on a customer's credit, as the module's API
// returns it and its events carry it.
type Authorization struct {
	ID int64 `json:"id"`
	// IdempotencyKey is the caller's key; a repeat with it gets this
	// authorization.
	IdempotencyKey string `json:"idempotency_key"`
	// CustomerID is null for a void recorded before any authorization.
	CustomerID *int64 `json:"customer_id"`
	// AmountCents is in the shop's currency's minor units; 0 for a void
	// recorded before any authorization.
	AmountCents int64  `json:"amount_cents"`
	Status      Status `json:"status"`
	// AuthorizedAt is null for a declined authorization and for a void
	// recorded before any authorization.
	AuthorizedAt *time.Time `json:"authorized_at"`
	VoidedAt     *time.Time `json:"voided_at"`
	CapturedAt   *time.Time `json:"captured_at"`
	// Version counts the authorization's changes, starting at 1.
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NullCompensation reports whether a is a void recorded for a key that was
// never authorized.
func (a Authorization) NullCompensation() bool {
	return a.Status == StatusVoided && a.AuthorizedAt == nil
}

// Account is a customer's credit.
type Account struct {
	CustomerID int64 `json:"customer_id"`
	// CreditLimitCents is the customer's own limit or, when
	// DefaultLimit, the configured default.
	CreditLimitCents int64 `json:"credit_limit_cents"`
	DefaultLimit     bool  `json:"default_limit"`
	// AuthorizedCents is the sum of the open (not yet captured or voided)
	// authorizations.
	AuthorizedCents int64 `json:"authorized_cents"`
	CapturedCents   int64 `json:"captured_cents"`
	// AvailableCents is limit − authorized − captured, never below 0.
	AvailableCents int64 `json:"available_cents"`
}

// NewAuthorization is the input of Authorize.
type NewAuthorization struct {
	CustomerID     int64  `json:"customer_id"`
	AmountCents    int64  `json:"amount_cents"`
	IdempotencyKey string `json:"idempotency_key"`
}

// Ref names one authorization: by ID or by idempotency key, exactly one.
type Ref struct {
	ID             int64  `json:"authorization_id"`
	IdempotencyKey string `json:"idempotency_key"`
}

// String names the authorization for messages.
func (r Ref) String() string {
	if r.IdempotencyKey != "" {
		return fmt.Sprintf("key %q", r.IdempotencyKey)
	}
	return fmt.Sprintf("id %d", r.ID)
}

// LimitPatch is the input of SetLimit: a limit of the customer's own, or
// null to go back to the default.
type LimitPatch struct {
	CreditLimitCents *int64 `json:"credit_limit_cents"`
}

// The module's errors that callers branch on.
var (
	ErrNotFound        = errors.New("no such authorization")
	ErrUnknownCustomer = errors.New("unknown customer")
	// ErrDeclined: the amount is over the customer's available credit.
	ErrDeclined = errors.New("payment declined")
	// ErrKeyReused: the idempotency key was used with another customer or
	// amount.
	ErrKeyReused = errors.New("idempotency key reused")
	// ErrVoidedBeforeAuthorized: the key's void was recorded before any
	// authorization (anti-hanging), so the late authorization is refused.
	ErrVoidedBeforeAuthorized = errors.New("authorization already voided")
	// ErrStatus: the authorization's status does not allow the change.
	ErrStatus = errors.New("authorization status does not allow this")
)

// Limits on input, also stated in the OpenAPI document.
const (
	MaxKeyLen      = 200
	MaxAmountCents = 10_000_000_000
	MaxLimitCents  = 1_000_000_000_000
)

// Validate checks a new authorization and normalises its key.
func (n *NewAuthorization) Validate() error {
	var v httpx.Validator
	v.Check(n.CustomerID > 0, "customer_id", "must be a positive customer id")
	v.Check(n.AmountCents >= 1 && n.AmountCents <= MaxAmountCents, "amount_cents",
		fmt.Sprintf("must be between 1 and %d, not %d", int64(MaxAmountCents), n.AmountCents))
	n.IdempotencyKey = strings.TrimSpace(n.IdempotencyKey)
	checkKey(&v, n.IdempotencyKey)
	return v.Err()
}

// Validate checks a reference: exactly one of the id and the key.
func (r *Ref) Validate() error {
	var v httpx.Validator
	r.IdempotencyKey = strings.TrimSpace(r.IdempotencyKey)
	switch {
	case r.ID == 0 && r.IdempotencyKey == "":
		v.Add("", "give one of authorization_id, idempotency_key")
	case r.ID != 0 && r.IdempotencyKey != "":
		v.Add("", "give only one of authorization_id, idempotency_key")
	case r.ID < 0:
		v.Add("authorization_id", "must be a positive authorization id")
	case r.IdempotencyKey != "":
		checkKey(&v, r.IdempotencyKey)
	}
	return v.Err()
}

// Validate checks a limit patch.
func (p *LimitPatch) Validate() error {
	var v httpx.Validator
	if l := p.CreditLimitCents; l != nil {
		v.Check(*l >= 0 && *l <= MaxLimitCents, "credit_limit_cents",
			fmt.Sprintf("must be between 0 and %d, not %d", int64(MaxLimitCents), *l))
	}
	return v.Err()
}

// ValidLimit reports whether a configured default limit is acceptable.
func ValidLimit(cents int64) bool { return cents >= 0 && cents <= MaxLimitCents }

func checkKey(v *httpx.Validator, key string) {
	switch {
	case key == "":
		v.Add("idempotency_key", "is required")
	case utf8.RuneCountInString(key) > MaxKeyLen:
		v.Add("idempotency_key", fmt.Sprintf("must be at most %d characters", MaxKeyLen))
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		v.Add("idempotency_key", "must not contain control characters")
	}
}
