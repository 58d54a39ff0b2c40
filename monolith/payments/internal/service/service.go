// Package service implements the payments module's API.
package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/internal/errs"
	"github.com/stranglerkit/strangler/monolith/internal/events"
	"github.com/stranglerkit/strangler/monolith/payments/internal/domain"
	"github.com/stranglerkit/strangler/monolith/payments/internal/store"
)

// aggregate is the events' aggregate type (topic <prefix>.payment).
const aggregate = "payment"

// keyAttempts bounds the retries of a write that lost a race for an
// idempotency key: the retry reads the winner, so a second loss means a
// defect.
const keyAttempts = 3

// errKeyRace marks a transaction that lost a race for an idempotency key
// and rolled back; it is retried.
var errKeyRace = errors.New("idempotency key taken concurrently")

// Service is the module's implementation.
type Service struct {
	db           *gorm.DB
	store        *store.Store
	events       *events.Emitter
	customers    customers.API
	defaultLimit int64
	now          func() time.Time
}

// New returns the service on gdb: customers confirms that a customer
// exists, defaultLimit is the credit of a customer without a limit of
// their own, now stamps changes.
func New(gdb *gorm.DB, cust customers.API, defaultLimit int64, now func() time.Time) *Service {
	return &Service{db: gdb, store: store.New(gdb), events: events.New("payments"), customers: cust, defaultLimit: defaultLimit, now: now}
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Authorize holds amount of the customer's credit under the idempotency
// key. A repeat with the key returns the first result: the authorization
// as it is now, or the decline again.
func (s *Service) Authorize(ctx context.Context, in domain.NewAuthorization) (domain.Authorization, error) {
	if err := in.Validate(); err != nil {
		return domain.Authorization{}, err
	}
	if err := s.customer(ctx, in.CustomerID); err != nil {
		return domain.Authorization{}, err
	}
	var out domain.Authorization
	err := s.retryKeyRace(ctx, func(ctx context.Context) error {
		prev, found, err := s.store.Get(ctx, 0, in.IdempotencyKey)
		if err != nil {
			return err
		}
		if found {
			out = toAuthorization(prev)
			return replay(out, in)
		}
		now := s.stamp()
		if err := s.store.EnsureAccount(ctx, in.CustomerID, now); err != nil {
			return err
		}
		held, err := s.store.Hold(ctx, in.CustomerID, in.AmountCents, s.defaultLimit, now)
		if err != nil {
			return err
		}
		r := store.Auth{
			IdempotencyKey: in.IdempotencyKey, CustomerID: &in.CustomerID, AmountCents: in.AmountCents,
			Status: string(domain.StatusDeclined), Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		eventType := "payment.declined"
		if held {
			r.Status, r.AuthorizedAt, eventType = string(domain.StatusAuthorized), &now, "payment.authorized"
		}
		if err := s.insert(ctx, &r); err != nil {
			return err
		}
		out = toAuthorization(r)
		return s.emit(ctx, eventType, out)
	})
	if err != nil {
		return domain.Authorization{}, err
	}
	if out.Status == domain.StatusDeclined {
		return out, s.declined(ctx, out)
	}
	return out, nil
}

// replay checks a repeated authorization against the first one with its
// key.
func replay(prev domain.Authorization, in domain.NewAuthorization) error {
	if prev.NullCompensation() {
		return errs.New(domain.ErrVoidedBeforeAuthorized,
			"the authorization with key %q was voided before it was made; use a new key", in.IdempotencyKey)
	}
	if *prev.CustomerID != in.CustomerID || prev.AmountCents != in.AmountCents {
		return errs.New(domain.ErrKeyReused,
			"the key %q authorized %d cents for customer %d; a repeat must ask the same", in.IdempotencyKey, prev.AmountCents, *prev.CustomerID)
	}
	return nil
}

// declined is the error of a declined authorization, saying how much
// credit the customer has now.
func (s *Service) declined(ctx context.Context, a domain.Authorization) error {
	acc, err := s.Account(ctx, *a.CustomerID)
	if err != nil {
		return err
	}
	return errs.New(domain.ErrDeclined, "customer %d has %d cents of credit available, the authorization with key %q needs %d",
		acc.CustomerID, acc.AvailableCents, a.IdempotencyKey, a.AmountCents)
}

// Void releases an authorization's hold (the compensation). Voiding a
// voided or declined authorization changes nothing; a captured one gives
// ErrStatus. A void by key for a key that was never authorized is
// recorded, so that a later Authorize with the key is refused.
func (s *Service) Void(ctx context.Context, ref domain.Ref) (domain.Authorization, error) {
	if err := ref.Validate(); err != nil {
		return domain.Authorization{}, err
	}
	var out domain.Authorization
	err := s.retryKeyRace(ctx, func(ctx context.Context) error {
		now := s.stamp()
		r, ok, err := s.store.Transition(ctx, ref.ID, ref.IdempotencyKey, string(domain.StatusVoided), "voided_at", now)
		if err != nil {
			return err
		}
		if ok {
			if err := s.store.Settle(ctx, *r.CustomerID, r.AmountCents, false, now); err != nil {
				return err
			}
			out = toAuthorization(r)
			return s.emit(ctx, "payment.voided", out)
		}
		r, found, err := s.store.Get(ctx, ref.ID, ref.IdempotencyKey)
		if err != nil {
			return err
		}
		switch {
		case found && domain.Status(r.Status) == domain.StatusCaptured:
			return errs.New(domain.ErrStatus, "the authorization with %s is captured and cannot be voided", ref)
		case found:
			out = toAuthorization(r)
			return nil
		case ref.ID != 0:
			return errs.New(domain.ErrNotFound, "no authorization has id %d", ref.ID)
		}
		r = store.Auth{
			IdempotencyKey: ref.IdempotencyKey, Status: string(domain.StatusVoided), VoidedAt: &now,
			Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		if err := s.insert(ctx, &r); err != nil {
			return err
		}
		out = toAuthorization(r)
		return s.emit(ctx, "payment.voided", out)
	})
	return out, err
}

// Capture charges an authorization's hold (the order is paid). Capturing
// a captured authorization changes nothing; a voided or declined one gives
// ErrStatus.
func (s *Service) Capture(ctx context.Context, ref domain.Ref) (domain.Authorization, error) {
	if err := ref.Validate(); err != nil {
		return domain.Authorization{}, err
	}
	var out domain.Authorization
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		r, ok, err := s.store.Transition(ctx, ref.ID, ref.IdempotencyKey, string(domain.StatusCaptured), "captured_at", now)
		if err != nil {
			return err
		}
		if ok {
			if err := s.store.Settle(ctx, *r.CustomerID, r.AmountCents, true, now); err != nil {
				return err
			}
			out = toAuthorization(r)
			return s.emit(ctx, "payment.captured", out)
		}
		r, found, err := s.store.Get(ctx, ref.ID, ref.IdempotencyKey)
		switch {
		case err != nil:
			return err
		case !found:
			return errs.New(domain.ErrNotFound, "no authorization has %s", ref)
		case domain.Status(r.Status) != domain.StatusCaptured:
			return errs.New(domain.ErrStatus, "the authorization with %s is %s and cannot be captured", ref, r.Status)
		}
		out = toAuthorization(r)
		return nil
	})
	return out, err
}

// Get returns one authorization.
func (s *Service) Get(ctx context.Context, ref domain.Ref) (domain.Authorization, error) {
	if err := ref.Validate(); err != nil {
		return domain.Authorization{}, err
	}
	r, found, err := s.store.Get(ctx, ref.ID, ref.IdempotencyKey)
	if err != nil {
		return domain.Authorization{}, err
	}
	if !found {
		return domain.Authorization{}, errs.New(domain.ErrNotFound, "no authorization has %s", ref)
	}
	return toAuthorization(r), nil
}

// Account returns a customer's credit; a customer who never used credit
// has the default limit and nothing held.
func (s *Service) Account(ctx context.Context, customer int64) (domain.Account, error) {
	if err := s.customer(ctx, customer); err != nil {
		return domain.Account{}, err
	}
	r, _, err := s.store.Account(ctx, customer)
	if err != nil {
		return domain.Account{}, err
	}
	r.CustomerID = customer
	return s.toAccount(r), nil
}

// SetLimit gives a customer a credit limit of their own, or (nil) the
// default back. A limit below what is held already declines every new
// authorization until captures and voids bring it within.
func (s *Service) SetLimit(ctx context.Context, customer int64, p domain.LimitPatch) (domain.Account, error) {
	if err := p.Validate(); err != nil {
		return domain.Account{}, err
	}
	if err := s.customer(ctx, customer); err != nil {
		return domain.Account{}, err
	}
	var out domain.Account
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		if err := s.store.EnsureAccount(ctx, customer, now); err != nil {
			return err
		}
		if err := s.store.SetLimit(ctx, customer, p.CreditLimitCents, now); err != nil {
			return err
		}
		r, _, err := s.store.Account(ctx, customer)
		out = s.toAccount(r)
		return err
	})
	return out, err
}

// customer confirms that customer id exists: ErrUnknownCustomer if not.
func (s *Service) customer(ctx context.Context, id int64) error {
	_, err := s.customers.Get(ctx, id)
	if errors.Is(err, customers.ErrNotFound) {
		return errs.New(domain.ErrUnknownCustomer, "no customer has id %d", id)
	}
	if err != nil {
		return fmt.Errorf("payments: look up customer %d: %w", id, err)
	}
	return nil
}

// retryKeyRace runs fn in a transaction, again when it lost a race for an
// idempotency key (on Postgres the losing INSERT aborts the transaction);
// the next attempt finds the winner's row.
func (s *Service) retryKeyRace(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	for range keyAttempts {
		if err = db.Transact(ctx, s.db, fn); !errors.Is(err, errKeyRace) {
			return err
		}
	}
	return fmt.Errorf("payments: %w %d times", err, keyAttempts)
}

func (s *Service) insert(ctx context.Context, r *store.Auth) error {
	if err := s.store.Insert(ctx, r); err != nil {
		if db.IsUniqueViolation(err) {
			return errKeyRace
		}
		return fmt.Errorf("record authorization: %w", err)
	}
	return nil
}

func (s *Service) emit(ctx context.Context, eventType string, a domain.Authorization) error {
	return s.events.Emit(ctx, aggregate, strconv.FormatInt(a.ID, 10), eventType, a)
}

func (s *Service) toAccount(r store.Account) domain.Account {
	a := domain.Account{
		CustomerID: r.CustomerID, CreditLimitCents: s.defaultLimit, DefaultLimit: r.CreditLimitCents == nil,
		AuthorizedCents: r.OpenCents, CapturedCents: r.CapturedCents,
	}
	if r.CreditLimitCents != nil {
		a.CreditLimitCents = *r.CreditLimitCents
	}
	a.AvailableCents = max(0, a.CreditLimitCents-a.AuthorizedCents-a.CapturedCents)
	return a
}

func toAuthorization(r store.Auth) domain.Authorization {
	return domain.Authorization{
		ID: r.ID, IdempotencyKey: r.IdempotencyKey, CustomerID: r.CustomerID, AmountCents: r.AmountCents,
		Status: domain.Status(r.Status), AuthorizedAt: utc(r.AuthorizedAt), VoidedAt: utc(r.VoidedAt), CapturedAt: utc(r.CapturedAt),
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
