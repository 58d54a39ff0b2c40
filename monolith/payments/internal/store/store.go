// Package store reads and writes the payments tables. Every statement runs
// on db.Conn, so it joins the transaction the context carries.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// Account is one row of pay_accounts.
type Account struct {
	CustomerID       int64     `gorm:"column:customer_id;primaryKey"`
	CreditLimitCents *int64    `gorm:"column:credit_limit_cents"`
	OpenCents        int64     `gorm:"column:open_cents"`
	CapturedCents    int64     `gorm:"column:captured_cents"`
	Version          int       `gorm:"column:version"`
	UpdatedAt        time.Time `gorm:"column:updated_at"`
}

// TableName is the table the module owns.
func (Account) TableName() string { return "pay_accounts" }

// Auth is one row of pay_authorizations.
type Auth struct {
	ID             int64      `gorm:"column:id;primaryKey"`
	IdempotencyKey string     `gorm:"column:idempotency_key"`
	CustomerID     *int64     `gorm:"column:customer_id"`
	AmountCents    int64      `gorm:"column:amount_cents"`
	Status         string     `gorm:"column:status"`
	AuthorizedAt   *time.Time `gorm:"column:authorized_at"`
	VoidedAt       *time.Time `gorm:"column:voided_at"`
	CapturedAt     *time.Time `gorm:"column:captured_at"`
	Version        int        `gorm:"column:version"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
	UpdatedAt      time.Time  `gorm:"column:updated_at"`
}

// TableName is the table the module owns.
func (Auth) TableName() string { return "pay_authorizations" }

const authColumns = "id, idempotency_key, customer_id, amount_cents, status, authorized_at, voided_at, captured_at, version, created_at, updated_at"

// Store is the module's data access.
type Store struct{ db *gorm.DB }

// New returns a store on gdb.
func New(gdb *gorm.DB) *Store { return &Store{db: gdb} }

// Account returns customer's account row; ok is false when the customer
// has none yet.
func (s *Store) Account(ctx context.Context, customer int64) (a Account, ok bool, err error) {
	err = db.Conn(ctx, s.db).Where("customer_id = ?", customer).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Account{}, false, nil
	}
	if err != nil {
		return Account{}, false, fmt.Errorf("get account %d: %w", customer, err)
	}
	return a, true, nil
}

// EnsureAccount creates customer's account, on the default limit, unless
// it exists. Concurrent callers wait for each other on the primary key.
func (s *Store) EnsureAccount(ctx context.Context, customer int64, now time.Time) error {
	err := db.Conn(ctx, s.db).Exec(
		"INSERT INTO pay_accounts (customer_id, open_cents, captured_cents, version, updated_at) VALUES (?, 0, 0, 1, ?) ON CONFLICT (customer_id) DO NOTHING",
		customer, now).Error
	if err != nil {
		return fmt.Errorf("create account %d: %w", customer, err)
	}
	return nil
}

// Hold adds amount to customer's open authorizations if the account's
// available credit (its own limit or defaultLimit, less the open and
// captured amounts) covers it, in one statement, so that two holds racing
// for the same credit never both succeed beyond it: the UPDATE locks the
// row and re-checks the condition on the committed values. ok is false
// when the credit does not cover amount.
func (s *Store) Hold(ctx context.Context, customer, amount, defaultLimit int64, now time.Time) (ok bool, err error) {
	res := db.Conn(ctx, s.db).Exec(
		`UPDATE pay_accounts SET open_cents = open_cents + ?, version = version + 1, updated_at = ?
		 WHERE customer_id = ? AND COALESCE(credit_limit_cents, ?) - open_cents - captured_cents >= ?`,
		amount, now, customer, defaultLimit, amount)
	if res.Error != nil {
		return false, fmt.Errorf("hold credit of customer %d: %w", customer, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Settle moves amount out of customer's open authorizations: back to the
// available credit (captured false, a void) or into the captured amount.
func (s *Store) Settle(ctx context.Context, customer, amount int64, captured bool, now time.Time) error {
	add := int64(0)
	if captured {
		add = amount
	}
	res := db.Conn(ctx, s.db).Exec(
		`UPDATE pay_accounts SET open_cents = open_cents - ?, captured_cents = captured_cents + ?, version = version + 1, updated_at = ?
		 WHERE customer_id = ?`, amount, add, now, customer)
	if res.Error != nil {
		return fmt.Errorf("settle credit of customer %d: %w", customer, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("settle credit of customer %d: no account", customer)
	}
	return nil
}

// SetLimit sets customer's own limit, or nil for the default.
func (s *Store) SetLimit(ctx context.Context, customer int64, limit *int64, now time.Time) error {
	err := db.Conn(ctx, s.db).Exec(
		"UPDATE pay_accounts SET credit_limit_cents = ?, version = version + 1, updated_at = ? WHERE customer_id = ?",
		limit, now, customer).Error
	if err != nil {
		return fmt.Errorf("set limit of customer %d: %w", customer, err)
	}
	return nil
}

// Insert adds r and sets its ID. A key that is taken gives a unique
// violation.
func (s *Store) Insert(ctx context.Context, r *Auth) error {
	return db.Conn(ctx, s.db).Create(r).Error
}

// Get returns the authorization with id, or with key when id is 0; ok is
// false when there is none.
func (s *Store) Get(ctx context.Context, id int64, key string) (r Auth, ok bool, err error) {
	q := db.Conn(ctx, s.db)
	if id != 0 {
		q = q.Where("id = ?", id)
	} else {
		q = q.Where("idempotency_key = ?", key)
	}
	err = q.Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Auth{}, false, nil
	}
	if err != nil {
		return Auth{}, false, fmt.Errorf("get authorization: %w", err)
	}
	return r, true, nil
}

// Transition moves the authorization named by id (or key, when id is 0)
// from status authorized to status to, stamping column at now, and returns
// the new row; ok is false when there is no such authorization in status
// authorized. The UPDATE locks the row, so of two racing transitions one
// wins and the other sees the winner's status.
func (s *Store) Transition(ctx context.Context, id int64, key, to, column string, now time.Time) (r Auth, ok bool, err error) {
	where, arg := "id = ?", any(id)
	if id == 0 {
		where, arg = "idempotency_key = ?", key
	}
	var rows []Auth
	sql := "UPDATE pay_authorizations SET status = ?, " + column + " = ?, version = version + 1, updated_at = ? WHERE " + where +
		" AND status = 'authorized' RETURNING " + authColumns
	if err := db.Conn(ctx, s.db).Raw(sql, to, now, now, arg).Scan(&rows).Error; err != nil {
		return Auth{}, false, fmt.Errorf("%s authorization: %w", to, err)
	}
	if len(rows) == 0 {
		return Auth{}, false, nil
	}
	return rows[0], true, nil
}
