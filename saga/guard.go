package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
)

// GuardMigrations is the set of a participant's saga_guard table, version
// table schema_migrations_sagaguard: add it to the sets the participant
// applies to its own database.
func GuardMigrations() db.Migrations {
	return db.Migrations{Name: "sagaguard", FS: migrations.FS("sagaguard")}
}

// ErrCompensated is returned by Guard.Do for a key whose compensation
// came first: the forward step arrived late (it hung in the network, or
// an orchestrator gave up on it) and must not take effect now. Wrap it in
// a 409 for an HTTP participant; it is permanent.
var ErrCompensated = errors.New("saga step already compensated")

// Guard is the participant's side of a saga: a record, in the
// participant's own database and transaction, of the idempotency keys it
// has seen (table saga_guard, from GuardMigrations).
type Guard struct {
	gdb *gorm.DB
	now func() time.Time
}

// NewGuard returns the guard on the participant's database.
func NewGuard(gdb *gorm.DB) *Guard { return &Guard{gdb: gdb, now: time.Now} }

// The states of a guard record.
const (
	guardPending     = "pending"
	guardDone        = "done"
	guardCompensated = "compensated"
)

type guardRow struct {
	IdemKey          string `gorm:"primaryKey"`
	State            string
	Result           string
	NullCompensation bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

func (guardRow) TableName() string { return "saga_guard" }

// Outcome is what Guard.Do did.
type Outcome struct {
	// Result is the forward step's answer: fn's, or the first one's for a
	// repeat.
	Result []byte
	// Repeat reports that the key had been done already and fn did not
	// run.
	Repeat bool
}

// claim inserts the key's record in state, unless it exists; it reports
// whether it did, and else returns the existing record. Inside a
// transaction a concurrent claim of the same key waits for this one's
// commit (Postgres's unique index, SQLite's single writer), so that only
// one of them runs the step.
func (g *Guard) claim(ctx context.Context, key, state string, null bool) (bool, *guardRow, error) {
	now := g.now().UTC()
	row := guardRow{IdemKey: key, State: state, NullCompensation: null, CreatedAt: now, UpdatedAt: now}
	res := db.Conn(ctx, g.gdb).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return false, nil, fmt.Errorf("saga guard %s: %w", key, res.Error)
	}
	if res.RowsAffected == 1 {
		return true, &row, nil
	}
	var got guardRow
	if err := db.Conn(ctx, g.gdb).Where("idem_key = ?", key).Take(&got).Error; err != nil {
		return false, nil, fmt.Errorf("saga guard %s: %w", key, err)
	}
	return false, &got, nil
}

func (g *Guard) mark(ctx context.Context, key string, set map[string]any) error {
	set["updated_at"] = g.now().UTC()
	if err := db.Conn(ctx, g.gdb).Model(&guardRow{}).Where("idem_key = ?", key).Updates(set).Error; err != nil {
		return fmt.Errorf("saga guard %s: %w", key, err)
	}
	return nil
}

// Do runs the forward step fn for key at most once. It runs in the
// transaction ctx carries, or in one of its own (db.Transact), together
// with fn's writes (use db.Conn(ctx, ...) in fn): fn's effects and the
// key's record commit together or not at all. A key done before answers
// with its first result, without calling fn; a key compensated before
// answers ErrCompensated (marked Permanent). An error from fn rolls
// everything back, so that the step can be retried.
func (g *Guard) Do(ctx context.Context, key string, fn func(ctx context.Context) ([]byte, error)) (Outcome, error) {
	var out Outcome
	err := db.Transact(ctx, g.gdb, func(ctx context.Context) error {
		claimed, row, err := g.claim(ctx, key, guardPending, false)
		if err != nil {
			return err
		}
		if !claimed {
			switch row.State {
			case guardDone:
				out = Outcome{Result: []byte(row.Result), Repeat: true}
				return nil
			case guardCompensated:
				return Permanent(fmt.Errorf("saga guard %s: %w", key, ErrCompensated))
			default:
				return fmt.Errorf("saga guard %s: record in state %q", key, row.State)
			}
		}
		res, err := fn(ctx)
		if err != nil {
			return err
		}
		out = Outcome{Result: res}
		return g.mark(ctx, key, map[string]any{"state": guardDone, "result": string(res)})
	})
	return out, err
}

// Compensate runs the compensation fn for key at most once, in one
// transaction with the key's record as Do does; fn gets the forward
// step's result. A key whose forward step never ran is a null
// compensation: fn is not called, and the record it leaves refuses that
// step if it arrives later (ErrCompensated). A key compensated before
// is a no-op.
func (g *Guard) Compensate(ctx context.Context, key string, fn func(ctx context.Context, result []byte) error) error {
	return db.Transact(ctx, g.gdb, func(ctx context.Context) error {
		claimed, row, err := g.claim(ctx, key, guardCompensated, true)
		if err != nil || claimed {
			return err
		}
		switch row.State {
		case guardCompensated:
			return nil
		case guardDone:
			if err := fn(ctx, []byte(row.Result)); err != nil {
				return err
			}
			return g.mark(ctx, key, map[string]any{"state": guardCompensated})
		default:
			return fmt.Errorf("saga guard %s: record in state %q", key, row.State)
		}
	})
}

// GuardRecord is what the guard holds for a key, for tests and
// reconciliation.
type GuardRecord struct {
	Key              string `json:"key"`
	State            string `json:"state"`
	Result           []byte `json:"result,omitempty"`
	NullCompensation bool   `json:"null_compensation"`
}

// Lookup returns the record of key, or ErrNotFound.
func (g *Guard) Lookup(ctx context.Context, key string) (*GuardRecord, error) {
	var row guardRow
	err := db.Conn(ctx, g.gdb).Where("idem_key = ?", key).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("saga guard %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("saga guard %s: %w", key, err)
	}
	return &GuardRecord{Key: row.IdemKey, State: row.State, Result: []byte(row.Result), NullCompensation: row.NullCompensation}, nil
}
