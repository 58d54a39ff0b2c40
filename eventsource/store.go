package eventsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
)

// Options configure a SQLStore.
type Options struct {
	// AggregateType names the streams the store appends to and loads, such
	// as "order". Required. It is also the outbox events' aggregate type,
	// so it must be a valid topic name part.
	AggregateType string
	// Outbox, when not nil, writes a copy of every appended event into the
	// transactional outbox in the same transaction, with the same id, so
	// that the relay publishes it. Its Source must be set. If nil, events
	// stay in the store.
	Outbox *outbox.Writer
	// Upcasters bring stored events up to their latest schema version on
	// every read. If nil, events are read as stored.
	Upcasters *Upcasters
	// Now stamps events whose OccurredAt is zero. If nil, time.Now.
	Now func() time.Time
}

// SQLStore is the Store on a gorm database (SQLite or Postgres) migrated
// with Migrations, and, when Options.Outbox is set, with outbox.Migrations.
//
// On Postgres, appends to the store serialise on one transaction-scoped
// advisory lock, which the es_events trigger takes as it draws an event's
// position and holds until the transaction ends, so that positions are
// drawn in commit order. To hold it as briefly as it can, Append checks the
// stream's version without it (the table's unique key on the stream's
// versions catches a writer that appends in between) and queues the events
// and their outbox copies to the end of the transaction (db.Batch): the
// commit writes them, however many appends the transaction made, in the
// statement that carries the COMMIT, the events after every other queued
// row (db.Batch.Last). The lock order is thus: the outbox's per-aggregate
// locks (its table's trigger takes them, see outbox.Writer.Add), wherever
// the transaction writes its outbox events, then the append lock, at the
// commit. Every appending transaction takes them in that order, so appends
// cannot deadlock with one another or with outbox writers; do not insert
// into es_events by other means in a transaction that goes on after. A
// conflict found at the commit makes it fail with an *ErrConcurrency.
// Until the commit, Load and Version in the transaction see its queued
// events (at position 0); ReadAll and Head do not. On SQLite, write
// transactions serialise anyway, and Append writes at once.
type SQLStore struct {
	db      *gorm.DB
	opt     Options
	dialect db.Dialect
}

// queued holds the events that Append queues in a Postgres transaction,
// of every store on the pool, until its commit writes them, after the
// transaction's other queued rows.
var queued = db.Batch[row]{Table: "es_events", Columns: eventColumns, Values: row.values, Err: conflictAtCommit, Last: true}

// eventColumns are the columns of es_events that Append writes; position
// comes from the table (AUTOINCREMENT on SQLite, the trigger on Postgres).
var eventColumns = []string{"id", "aggregate_type", "aggregate_id", "version", "type", "schema_version", "occurred_at", "traceparent", "payload"}

// values are r's values for eventColumns.
func (r row) values() []any {
	return []any{r.ID, r.AggregateType, r.AggregateID, r.Version, r.Type, r.SchemaVersion, r.OccurredAt, r.TraceParent, r.Payload}
}

// conflictAtCommit is the *ErrConcurrency of a commit whose queued events
// met another writer's in es_events' unique keys, and err itself when it
// is anything else.
func conflictAtCommit(err error, rows []row) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" || pe.TableName != "es_events" || len(rows) == 0 {
		return err
	}
	first := rows[0]
	for _, r := range rows[1:] {
		if r.AggregateType != first.AggregateType || r.AggregateID != first.AggregateID {
			// The transaction appended to several streams, and the error
			// does not say which one met another writer.
			return &ErrConcurrency{AggregateType: first.AggregateType, Expected: -1, Actual: -1}
		}
	}
	return &ErrConcurrency{AggregateType: first.AggregateType, AggregateID: first.AggregateID, Expected: first.Version - 1, Actual: -1}
}

// NewStore returns the store of opt.AggregateType's streams in gdb.
func NewStore(gdb *gorm.DB, opt Options) (*SQLStore, error) {
	var errs []error
	if gdb == nil {
		errs = append(errs, errors.New("no database"))
	}
	if opt.AggregateType == "" {
		errs = append(errs, errors.New("aggregate type is empty"))
	} else if strings.ContainsAny(opt.AggregateType, " /") {
		errs = append(errs, fmt.Errorf("aggregate type %q must not hold spaces or slashes", opt.AggregateType))
	}
	if opt.Outbox != nil && opt.Outbox.Source == "" {
		errs = append(errs, errors.New("outbox writer has no source"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("eventsource: %w", errors.Join(errs...))
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &SQLStore{db: gdb, opt: opt, dialect: db.DialectOf(gdb)}, nil
}

// AggregateType is the type of the store's streams.
func (s *SQLStore) AggregateType() string { return s.opt.AggregateType }

// DB is the store's database.
func (s *SQLStore) DB() *gorm.DB { return s.db }

// Upcasters are the store's upcasters, nil if it has none.
func (s *SQLStore) Upcasters() *Upcasters { return s.opt.Upcasters }

// row is one row of es_events.
type row struct {
	Position      int64     `gorm:"column:position"`
	ID            string    `gorm:"column:id"`
	AggregateType string    `gorm:"column:aggregate_type"`
	AggregateID   string    `gorm:"column:aggregate_id"`
	Version       int64     `gorm:"column:version"`
	Type          string    `gorm:"column:type"`
	SchemaVersion int       `gorm:"column:schema_version"`
	OccurredAt    time.Time `gorm:"column:occurred_at"`
	TraceParent   string    `gorm:"column:traceparent"`
	Payload       string    `gorm:"column:payload"`
}

const selectColumns = "SELECT position, id, aggregate_type, aggregate_id, version, type, schema_version, occurred_at, traceparent, payload FROM es_events "

// event converts the row and upcasts it.
func (s *SQLStore) event(r row) (Event, error) {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return Event{}, fmt.Errorf("eventsource: event at position %d: id %q: %w", r.Position, r.ID, err)
	}
	return s.opt.Upcasters.Upcast(Event{ID: id, Type: r.Type, SchemaVersion: r.SchemaVersion, Payload: []byte(r.Payload),
		OccurredAt: r.OccurredAt.UTC(), TraceParent: r.TraceParent, AggregateType: r.AggregateType,
		AggregateID: r.AggregateID, Version: r.Version, Position: r.Position})
}

func (s *SQLStore) events(rows []row) ([]Event, error) {
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		ev, err := s.event(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// Append adds events to aggregateID's stream at expectedVersion (see
// Store). Each event gets its ID, OccurredAt and SchemaVersion filled as
// NewEvent and the outbox do, and, when the store has an outbox, a copy in
// it. On Postgres, the events and their copies are written at the commit
// (see SQLStore).
func (s *SQLStore) Append(ctx context.Context, aggregateID string, expectedVersion int64, events ...Event) (int64, error) {
	if aggregateID == "" {
		return 0, errors.New("eventsource: append: aggregate id is empty")
	}
	if len(events) == 0 {
		return expectedVersion, nil
	}
	rows, err := s.prepare(aggregateID, expectedVersion, events)
	if err != nil {
		return 0, err
	}
	err = db.Transact(ctx, s.db, func(ctx context.Context) error {
		cur, err := s.Version(ctx, aggregateID)
		if err != nil {
			return err
		}
		if cur != expectedVersion {
			return &ErrConcurrency{AggregateType: s.opt.AggregateType, AggregateID: aggregateID, Expected: expectedVersion, Actual: cur}
		}
		if s.dialect == db.Postgres {
			if s.opt.Outbox != nil {
				if err := s.opt.Outbox.Queue(ctx, s.copies(rows)...); err != nil {
					return err
				}
			}
			return queued.Add(ctx, rows...)
		}
		tx := db.Conn(ctx, s.db)
		if err := db.WriteInserts(tx, db.Insert{Table: "es_events", Columns: eventColumns, Rows: eventValues(rows)}); err != nil {
			if db.IsUniqueViolation(err) {
				return &ErrConcurrency{AggregateType: s.opt.AggregateType, AggregateID: aggregateID, Expected: expectedVersion, Actual: -1}
			}
			return fmt.Errorf("eventsource: append to %s %s: %w", s.opt.AggregateType, aggregateID, err)
		}
		if s.opt.Outbox == nil {
			return nil
		}
		return s.opt.Outbox.Add(tx, s.copies(rows)...)
	})
	if err != nil {
		return 0, err
	}
	return expectedVersion + int64(len(events)), nil
}

// copies are the outbox events of rows.
func (s *SQLStore) copies(rows []row) []changefeed.Event {
	out := make([]changefeed.Event, len(rows))
	for i, r := range rows {
		out[i] = changefeed.Event{ID: uuid.MustParse(r.ID), AggregateType: r.AggregateType, AggregateID: r.AggregateID,
			Type: r.Type, SchemaVersion: r.SchemaVersion, OccurredAt: r.OccurredAt, TraceParent: r.TraceParent, Payload: []byte(r.Payload)}
	}
	return out
}

// eventValues are rows' values for eventColumns.
func eventValues(rows []row) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = r.values()
	}
	return out
}

// queuedOf returns the events of aggregateID's stream that Append queued
// in the transaction ctx carries and its commit has yet to write, in
// version order.
func (s *SQLStore) queuedOf(ctx context.Context, aggregateID string) []row {
	var out []row
	for _, r := range queued.Queued(ctx) {
		if r.AggregateType == s.opt.AggregateType && r.AggregateID == aggregateID {
			out = append(out, r)
		}
	}
	return out
}

// prepare fills the events' defaults and numbers them from expectedVersion+1.
func (s *SQLStore) prepare(aggregateID string, expectedVersion int64, events []Event) ([]row, error) {
	now := s.opt.Now().UTC()
	rows := make([]row, len(events))
	for i, e := range events {
		if e.Type == "" {
			return nil, fmt.Errorf("eventsource: append to %s %s: event %d has no type", s.opt.AggregateType, aggregateID, i)
		}
		if len(e.Payload) == 0 {
			return nil, fmt.Errorf("eventsource: append to %s %s: event %d (%s) has no payload", s.opt.AggregateType, aggregateID, i, e.Type)
		}
		if e.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("eventsource: new event id: %w", err)
			}
			e.ID = id
		}
		if e.OccurredAt.IsZero() {
			e.OccurredAt = now
		}
		if e.SchemaVersion <= 0 {
			e.SchemaVersion = 1
		}
		rows[i] = row{ID: e.ID.String(), AggregateType: s.opt.AggregateType, AggregateID: aggregateID, Version: expectedVersion + int64(i) + 1,
			Type: e.Type, SchemaVersion: e.SchemaVersion, OccurredAt: e.OccurredAt.UTC(), TraceParent: e.TraceParent, Payload: string(e.Payload)}
	}
	return rows, nil
}

// Version is the stream's current version, 0 when it has no events,
// with the events queued in the transaction ctx carries (see SQLStore).
func (s *SQLStore) Version(ctx context.Context, aggregateID string) (int64, error) {
	if q := s.queuedOf(ctx, aggregateID); len(q) > 0 {
		return q[len(q)-1].Version, nil
	}
	var v int64
	err := db.Conn(ctx, s.db).Raw("SELECT COALESCE(MAX(version), 0) FROM es_events WHERE aggregate_type = ? AND aggregate_id = ?", s.opt.AggregateType, aggregateID).Scan(&v).Error
	if err != nil {
		return 0, fmt.Errorf("eventsource: version of %s %s: %w", s.opt.AggregateType, aggregateID, err)
	}
	return v, nil
}

// Load returns aggregateID's events after afterVersion (see Store), and
// after them those queued in the transaction ctx carries, at position 0
// (see SQLStore).
func (s *SQLStore) Load(ctx context.Context, aggregateID string, afterVersion int64) ([]Event, error) {
	var rows []row
	err := db.Conn(ctx, s.db).Raw(selectColumns+"WHERE aggregate_type = ? AND aggregate_id = ? AND version > ? ORDER BY version",
		s.opt.AggregateType, aggregateID, afterVersion).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("eventsource: load %s %s: %w", s.opt.AggregateType, aggregateID, err)
	}
	for _, r := range s.queuedOf(ctx, aggregateID) {
		if r.Version > afterVersion {
			rows = append(rows, r)
		}
	}
	return s.events(rows)
}

// ReadAll returns up to limit events of every stream in the table, of any
// aggregate type, after position after (see Store). A limit of zero or
// less means 500.
func (s *SQLStore) ReadAll(ctx context.Context, after int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 500
	}
	var rows []row
	err := db.Conn(ctx, s.db).Raw(selectColumns+"WHERE position > ? ORDER BY position LIMIT ?", after, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("eventsource: read from position %d: %w", after, err)
	}
	return s.events(rows)
}

// Head is the highest position in the store (see Store).
func (s *SQLStore) Head(ctx context.Context) (int64, error) {
	var p int64
	if err := db.Conn(ctx, s.db).Raw("SELECT COALESCE(MAX(position), 0) FROM es_events").Scan(&p).Error; err != nil {
		return 0, fmt.Errorf("eventsource: head position: %w", err)
	}
	return p, nil
}

// firstAfter is when the first event after position after happened, and
// false when there is none.
func (s *SQLStore) firstAfter(ctx context.Context, after int64) (time.Time, bool, error) {
	var rows []row
	err := db.Conn(ctx, s.db).Raw("SELECT occurred_at FROM es_events WHERE position > ? ORDER BY position LIMIT 1", after).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return time.Time{}, false, err
	}
	return rows[0].OccurredAt.UTC(), true, nil
}
