// Package outbox writes domain events into the transactional outbox: the
// "outbox" table, in the same database transaction as the state change they
// describe, so that an event is published if and only if its change
// committed. Package relay publishes the table to Kafka.
//
// Any gorm application on SQLite or Postgres can use it: migrate the set
// from Migrations into its database, then call Add with the transaction
// that makes the change.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
)

// Table is the outbox table's name.
const Table = "outbox"

// Migrations is the golang-migrate set that creates the outbox, the relay's
// state and the backfill's progress tables.
func Migrations() db.Migrations {
	return db.Migrations{Name: "outbox", FS: migrations.FS("changefeed/outbox")}
}

// ErrNoTransaction is returned by Add when it is not given a transaction: an
// event written outside the state change's transaction could be published
// for a change that rolled back, or lost for one that committed.
var ErrNoTransaction = errors.New("outbox: events must be added inside the transaction that makes the change")

// Writer adds events with defaults for their source and origin.
type Writer struct {
	// Source is used for events whose Source is empty.
	Source string
	// Origin is used for events whose Origin is empty. If empty, each
	// event's Source is used.
	Origin string
}

// Add writes events in the transaction tx. See Writer.Add.
func Add(tx *gorm.DB, events ...changefeed.Event) error {
	return Writer{}.Add(tx, events...)
}

// AddContext writes events in the transaction that ctx carries (see
// db.Transact). See Writer.Add.
func AddContext(ctx context.Context, gdb *gorm.DB, events ...changefeed.Event) error {
	return Writer{}.AddContext(ctx, gdb, events...)
}

// AddContext writes events in the transaction that ctx carries, as put
// there by db.Transact.
func (w Writer) AddContext(ctx context.Context, gdb *gorm.DB, events ...changefeed.Event) error {
	if !db.InTx(ctx) {
		return ErrNoTransaction
	}
	return w.Add(db.Conn(ctx, gdb), events...)
}

// Add writes events into the outbox in the transaction tx, which must be
// the transaction that makes the change the events describe.
//
// It fills an empty ID with a new UUIDv7, a zero OccurredAt with the current
// time, a zero SchemaVersion with 1, an empty TraceParent with the trace
// context of the transaction's context (see changefeed.WithTraceParent) or a
// new trace shared by the events of this call, an empty Source with the
// Writer's, and an empty Origin with the Writer's Origin or the event's
// Source. It validates every event first and writes none if one is invalid;
// the errors wrap changefeed.ErrInvalidEvent.
//
// On Postgres, each event takes a transaction-scoped lock on its aggregate
// (by the table's trigger), so two transactions that write events of the
// same aggregate serialise from that point to their commit. Write an
// aggregate's state and its events in the same order in every transaction,
// as with any row lock, to avoid deadlocks.
func (w Writer) Add(tx *gorm.DB, events ...changefeed.Event) error {
	if len(events) == 0 {
		return nil
	}
	if tx == nil {
		return ErrNoTransaction
	}
	if _, ok := tx.Statement.ConnPool.(gorm.TxCommitter); !ok {
		return ErrNoTransaction
	}
	rows, err := w.prepare(tx.Statement.Context, events)
	if err != nil {
		return err
	}
	return insertAll(tx, rows)
}

// columns are the outbox's columns that Add and Queue write; seq and
// created_at come from the table.
var columns = []string{"id", "source", "aggregatetype", "aggregateid", "type", "schema_version", "occurred_at", "traceparent", "origin", "payload"}

// values are the values of e for columns.
func values(e changefeed.Event) []any {
	return []any{e.ID.String(), e.Source, e.AggregateType, e.AggregateID, e.Type, e.SchemaVersion, e.OccurredAt, e.TraceParent, e.Origin, string(e.Payload)}
}

// queue holds the events that Queue adds to a transaction until its commit,
// which writes them with the transaction's other queued rows.
var queue = db.Batch[changefeed.Event]{Table: Table, Columns: columns, Values: values}

// Queue is Add for the transaction that ctx carries (see db.Transact), with
// the INSERT put off until just before the commit: the events a transaction
// queues, from every Writer, are written in one statement, in the order
// they were queued, where AddContext costs a round trip per call; on
// Postgres, in the one statement that writes every batch of the
// transaction (see db.Batch). It fills
// and validates the events as Add does, now, and returns the errors now;
// an error of the INSERT itself fails the commit. The events are not in
// the table before then, so use AddContext for events the transaction
// reads back.
//
// On Postgres the aggregates' locks (see Add) are then taken at the commit,
// after every other lock the transaction holds but those of batches that
// go last (db.Batch.Last: the event store's append lock), in the order
// queued.
func (w Writer) Queue(ctx context.Context, events ...changefeed.Event) error {
	if !db.InTx(ctx) {
		return ErrNoTransaction
	}
	rows, err := w.prepare(ctx, events)
	if err != nil {
		return err
	}
	return queue.Add(ctx, rows...)
}

// prepare fills the events' defaults (see Add) and validates them, with
// ctx, which may be nil, giving the trace context.
func (w Writer) prepare(ctx context.Context, events []changefeed.Event) ([]changefeed.Event, error) {
	now := time.Now().UTC()
	trace := ""
	if ctx != nil {
		trace = changefeed.TraceParentFrom(ctx)
	}
	if trace == "" {
		trace = changefeed.NewTraceParent().String()
	}
	rows := make([]changefeed.Event, len(events))
	var errs []error
	for i, e := range events {
		if e.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("outbox: new event id: %w", err)
			}
			e.ID = id
		}
		if e.OccurredAt.IsZero() {
			e.OccurredAt = now
		}
		e.OccurredAt = e.OccurredAt.UTC()
		if e.SchemaVersion == 0 {
			e.SchemaVersion = 1
		}
		if e.TraceParent == "" {
			e.TraceParent = trace
		}
		if e.Source == "" {
			e.Source = w.Source
		}
		if e.Origin == "" {
			e.Origin = w.Origin
		}
		if e.Origin == "" {
			e.Origin = e.Source
		}
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("event %d (%s %s/%s): %w", i, e.Type, e.AggregateType, e.AggregateID, err))
		}
		rows[i] = e
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("outbox: %w", errors.Join(errs...))
	}
	return rows, nil
}

// insertAll writes rows in multi-row INSERTs.
func insertAll(tx *gorm.DB, rows []changefeed.Event) error {
	in := db.Insert{Table: Table, Columns: columns, Rows: make([][]any, len(rows))}
	for i, e := range rows {
		in.Rows[i] = values(e)
	}
	if err := db.WriteInserts(tx, in); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}
