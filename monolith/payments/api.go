package payments

import (
	"context"

	"github.com/stranglerkit/strangler/monolith/payments/internal/domain"
)

// API is the payments module as other parts of the shop, and the order
// saga through the HTTP API, may use it.
//
// Invalid input gives an *httpx.Problem (400 or 422) naming every bad
// field. Every write is idempotent: a repeat returns the first result.
type API interface {
	// Authorize holds an amount of a customer's credit under an
	// idempotency key. Over the available credit (limit − open
	// authorizations − captured) it records and returns the decline with
	// an error wrapping ErrDeclined. A key already voided gives
	// ErrVoidedBeforeAuthorized; a key used for another customer or
	// amount ErrKeyReused; an unknown customer ErrUnknownCustomer.
	Authorize(ctx context.Context, in NewAuthorization) (Authorization, error)
	// Void releases an authorization's hold, by id or key. A void by key
	// for a key never authorized is recorded (null compensation), so that
	// a later Authorize with it is refused. A captured authorization
	// gives ErrStatus.
	Void(ctx context.Context, ref Ref) (Authorization, error)
	// Capture charges an authorization's hold, by id or key, when its
	// order is paid; a voided or declined one gives ErrStatus.
	Capture(ctx context.Context, ref Ref) (Authorization, error)
	// Get returns one authorization, or an error wrapping ErrNotFound.
	Get(ctx context.Context, ref Ref) (Authorization, error)
	// Account returns a customer's credit.
	Account(ctx context.Context, customer int64) (Account, error)
	// SetLimit sets a customer's own credit limit, or the default back.
	SetLimit(ctx context.Context, customer int64, p LimitPatch) (Account, error)
}

// The contract types, defined in the module's internal domain package and
// documented there and in docs/api/shop.openapi.yaml.
type (
	// Authorization is a hold on a customer's credit.
	Authorization = domain.Authorization
	// Status is an authorization's state.
	Status = domain.Status
	// NewAuthorization is the input of Authorize.
	NewAuthorization = domain.NewAuthorization
	// Ref names an authorization by id or idempotency key.
	Ref = domain.Ref
	// Account is a customer's credit.
	Account = domain.Account
	// LimitPatch is the input of SetLimit.
	LimitPatch = domain.LimitPatch
)

// The statuses.
const (
	StatusAuthorized = domain.StatusAuthorized
	StatusDeclined   = domain.StatusDeclined
	StatusVoided     = domain.StatusVoided
	StatusCaptured   = domain.StatusCaptured
)

// The errors callers branch on, with errors.Is.
var (
	ErrNotFound               = domain.ErrNotFound
	ErrUnknownCustomer        = domain.ErrUnknownCustomer
	ErrDeclined               = domain.ErrDeclined
	ErrKeyReused              = domain.ErrKeyReused
	ErrVoidedBeforeAuthorized = domain.ErrVoidedBeforeAuthorized
	ErrStatus                 = domain.ErrStatus
)

// MaxCreditLimitCents is the highest credit limit, configured or set.
const MaxCreditLimitCents = domain.MaxLimitCents
