// Package pgstore is the shared control.Store: the control state in a
// Postgres database (control.dsn, a postgres:// URL) that several proxy
// replicas use at once, so that they agree.
//
// Each save is a new revision of one state row, made only where the row
// is still at the revision the change was based on, so that optimistic
// concurrency (the admin API's If-Match) holds across replicas; the
// newest revisions (Options.KeepHistory) are also kept in a history
// table, and the audit log, kept whole, is one table, so both are one log
// across replicas. Service registrations are
// rows with an expiry from the database clock, so that an instance
// registers through any replica and every replica sees it.
//
// A save notifies (pg_notify, in the save's transaction) on a channel that
// each store listens on once Changed is first called; since Postgres does
// not replay a notification to a listener that was away, the store also
// compares the stored revision after every reconnect, and its consumer
// polls Revision (control.RevisionReader) as the safety net.
//
// The schema is the golang-migrate set migrations/control, which Open
// applies.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
)

// ErrTooLarge is what Save's and AppendAudit's errors wrap when the
// document is larger than Options.MaxDocument.
var ErrTooLarge = errors.New("document too large")

// ErrClosed is what a method's error wraps when the store is closed.
var ErrClosed = errors.New("store closed")

// Options configure a Store.
type Options struct {
	// Channel is the Postgres notification channel that saves notify and
	// stores listen on; every replica of one control plane must use the
	// same. If empty, "strangler_control".
	Channel string
	// MaxDocument is the most bytes a saved state or an audit entry may
	// take as JSON. If zero, 16 MiB.
	MaxDocument int
	// KeepHistory is how many of the newest revisions the history keeps:
	// each save deletes the older ones in its transaction, so that the
	// history does not grow without bound. The audit log is kept whole. If
	// zero, 1000.
	KeepHistory int
	// SkipMigrate leaves the schema alone, for a database migrated ahead
	// of time with db.MigrateUp and Migrations, by a role that may change
	// the schema. If false, Open applies the control migrations.
	SkipMigrate bool
	// Logger receives the listener's reconnects. If nil, nothing is
	// logged.
	Logger *slog.Logger
}

// The defaults of Options.
const (
	DefaultChannel     = "strangler_control"
	DefaultMaxDocument = 16 << 20
	DefaultKeepHistory = control.DefaultKeepHistory
)

// The listener's reconnect backoff starts at minBackoff and doubles up to
// maxBackoff.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Migrations returns the control store's golang-migrate set.
func Migrations() db.Migrations {
	return db.Migrations{Name: "control", FS: migrations.FS("control")}
}

// Store is the control state in Postgres. Its methods are safe for
// concurrent use.
//
// Open connects the pool (pgxpool runs its own health check in the
// background); the listener starts on the first call of Changed, as a
// goroutine that Close stops and waits for, so a store that is never
// asked for changes runs nothing of its own.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig
	dsn     string // redacted
	opt     Options

	// known is the newest revision this store has handed out or saved:
	// Changed delivers only for a newer one.
	known atomic.Int64

	changed chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool

	// mu orders the start of the watch goroutines before Close's wait,
	// and guards saving.
	mu       sync.Mutex
	watching bool
	// saving counts this store's saves in flight by the revision each
	// would make, so that the listener, which may hear a save's
	// notification before Save returns, does not deliver it.
	saving map[int64]int
}

var (
	_ control.Store          = (*Store)(nil)
	_ control.RevisionReader = (*Store)(nil)
)

// Open connects to the database at dsn, a postgres:// URL (a search_path
// parameter puts the tables in that schema), applies the control
// migrations unless opt.SkipMigrate, and returns the store.
func Open(ctx context.Context, dsn string, opt Options) (*Store, error) {
	red := db.Redact(dsn)
	d, err := db.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if d.Dialect != db.Postgres {
		return nil, fmt.Errorf("pgstore: %w: %s: the shared control store needs a postgres:// URL", db.ErrBadDSN, red)
	}
	if opt.Channel == "" {
		opt.Channel = DefaultChannel
	}
	if len(opt.Channel) > 63 {
		return nil, fmt.Errorf("pgstore: channel %.20q… is longer than Postgres's 63-byte identifiers", opt.Channel)
	}
	if opt.MaxDocument <= 0 {
		opt.MaxDocument = DefaultMaxDocument
	}
	if opt.KeepHistory <= 0 {
		opt.KeepHistory = DefaultKeepHistory
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors redact the password already; the DSN is
		// named here in its redacted form only.
		return nil, fmt.Errorf("pgstore: %s: %w", red, err)
	}
	if !opt.SkipMigrate {
		if err := db.MigrateUp(ctx, dsn, Migrations()); err != nil {
			return nil, fmt.Errorf("pgstore: %w", err)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect %s: %w", red, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connect %s: %w", red, err)
	}
	s := &Store{pool: pool, connCfg: cfg.ConnConfig, dsn: red, opt: opt, changed: make(chan struct{}, 1), saving: map[int64]int{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// observe raises known to rev and reports whether rev was newer.
func (s *Store) observe(rev int64) bool {
	for {
		k := s.known.Load()
		if rev <= k {
			return false
		}
		if s.known.CompareAndSwap(k, rev) {
			return true
		}
	}
}

// ready refuses work on a closed store, whose pool would answer with an
// error that does not say so.
func (s *Store) ready(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("pgstore: %s: %w", op, ErrClosed)
	}
	return nil
}

// Load implements control.Store.
func (s *Store) Load(ctx context.Context) (*control.State, error) {
	if err := s.ready("load"); err != nil {
		return nil, err
	}
	var rev int64
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT revision, doc FROM control_state WHERE id = 1`).Scan(&rev, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	var st control.State
	if err := json.Unmarshal(doc, &st); err != nil {
		return nil, fmt.Errorf("pgstore: load: revision %d is corrupt: %w", rev, err)
	}
	st.Revision = rev
	s.observe(rev)
	return &st, nil
}

// Save implements control.Store. The new revision, its history row and
// the notification commit together, so a listener woken by the
// notification finds the revision stored.
func (s *Store) Save(ctx context.Context, st *control.State) error {
	if err := s.ready("save"); err != nil {
		return err
	}
	base := st.Revision
	next := *st
	next.Revision = base + 1
	doc, err := json.Marshal(&next)
	if err != nil {
		return fmt.Errorf("pgstore: save: %w", err)
	}
	if len(doc) > s.opt.MaxDocument {
		return fmt.Errorf("pgstore: save: state of %d bytes: %w (the limit is %d)", len(doc), ErrTooLarge, s.opt.MaxDocument)
	}
	s.beginSave(base + 1)
	defer s.endSave(base + 1)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var tag interface{ RowsAffected() int64 }
		var err error
		if base == 0 {
			tag, err = tx.Exec(ctx, `INSERT INTO control_state (id, revision, doc) VALUES (1, 1, $1) ON CONFLICT (id) DO NOTHING`, doc)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE control_state SET revision = $2, doc = $1, saved_at = now() WHERE id = 1 AND revision = $3`, doc, base+1, base)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var stored int64
			err := tx.QueryRow(ctx, `SELECT revision FROM control_state WHERE id = 1`).Scan(&stored)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			return &control.ConflictError{Base: base, Stored: stored}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO control_history (revision, doc) VALUES ($1, $2)`, base+1, doc); err != nil {
			return err
		}
		if oldest := base + 2 - int64(s.opt.KeepHistory); oldest > 1 {
			if _, err := tx.Exec(ctx, `DELETE FROM control_history WHERE revision < $1`, oldest); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.opt.Channel, fmt.Sprint(base+1))
		return err
	})
	var ce *control.ConflictError
	if errors.As(err, &ce) {
		// Another writer's save of the revision this one would have made
		// was not delivered while this one was in flight.
		s.wake(ce.Stored)
		return ce
	}
	if err != nil {
		return fmt.Errorf("pgstore: save: %w", err)
	}
	st.Revision = base + 1
	s.observe(st.Revision)
	return nil
}

// beginSave and endSave keep the count of saves in flight to rev.
func (s *Store) beginSave(rev int64) {
	s.mu.Lock()
	s.saving[rev]++
	s.mu.Unlock()
}

func (s *Store) endSave(rev int64) {
	s.mu.Lock()
	if s.saving[rev]--; s.saving[rev] <= 0 {
		delete(s.saving, rev)
	}
	s.mu.Unlock()
}

// ownSave reports whether a save of this store to rev is in flight.
func (s *Store) ownSave(rev int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saving[rev] > 0
}

// Revision is one saved revision of the state, from the history.
type Revision struct {
	State   *control.State
	SavedAt time.Time
}

// History returns up to limit saved revisions older than before (if zero,
// the newest), newest first: the one log of changes across replicas.
func (s *Store) History(ctx context.Context, before int64, limit int) ([]Revision, error) {
	if err := s.ready("history"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("pgstore: history: limit %d, want a positive one", limit)
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.pool.Query(ctx, `SELECT revision, doc, saved_at FROM control_history WHERE revision < $1 ORDER BY revision DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: history: %w", err)
	}
	defer rows.Close()
	out := []Revision{}
	for rows.Next() {
		var rev int64
		var doc []byte
		var at time.Time
		if err := rows.Scan(&rev, &doc, &at); err != nil {
			return nil, fmt.Errorf("pgstore: history: %w", err)
		}
		var st control.State
		if err := json.Unmarshal(doc, &st); err != nil {
			return nil, fmt.Errorf("pgstore: history: revision %d is corrupt: %w", rev, err)
		}
		st.Revision = rev
		out = append(out, Revision{State: &st, SavedAt: at})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: history: %w", err)
	}
	return out, nil
}

// AppendAudit implements control.Store.
func (s *Store) AppendAudit(ctx context.Context, e api.AuditEntry) error {
	if err := s.ready("append audit"); err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("pgstore: append audit: %w", err)
	}
	if len(b) > s.opt.MaxDocument {
		return fmt.Errorf("pgstore: append audit: entry of %d bytes: %w (the limit is %d)", len(b), ErrTooLarge, s.opt.MaxDocument)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO control_audit (module, entry) VALUES ($1, $2)`, e.Module, b); err != nil {
		return fmt.Errorf("pgstore: append audit: %w", err)
	}
	return nil
}

// A page of the audit log is read in batches of up to auditBatch rows and
// stops after auditScanBudget rows once it holds an entry, so that a
// module filter that keeps few entries does not read the whole log in one
// request.
const (
	auditBatch      = 500
	auditScanBudget = 5000
)

// Audit implements control.Store. The cursor is an entry's id: a page
// holds up to q.Limit entries older than it. With a module, the rows read
// are the module's and the table-wide ones, which control.Touches sorts
// out.
func (s *Store) Audit(ctx context.Context, q control.AuditQuery) (control.AuditPage, error) {
	if err := s.ready("audit"); err != nil {
		return control.AuditPage{}, err
	}
	if q.Limit <= 0 {
		return control.AuditPage{}, fmt.Errorf("pgstore: audit: limit %d, want a positive one", q.Limit)
	}
	cursor := q.Before
	if cursor <= 0 {
		cursor = math.MaxInt64
	}
	batch := min(q.Limit+1, auditBatch)
	out := []api.AuditEntry{}
	scanned := 0
	for {
		n, full, err := s.auditBatch(ctx, q, &cursor, batch, &out)
		if err != nil {
			return control.AuditPage{}, fmt.Errorf("pgstore: audit: %w", err)
		}
		scanned += n
		switch {
		case len(out) == q.Limit && full:
			return control.AuditPage{Entries: out, Next: cursor}, nil
		case n < batch:
			return control.AuditPage{Entries: out}, nil
		case len(out) == q.Limit || (scanned >= auditScanBudget && len(out) > 0):
			return control.AuditPage{Entries: out, Next: cursor}, nil
		}
	}
}

// auditBatch reads up to batch rows older than *cursor into *out, until
// it holds q.Limit entries, and moves *cursor to the oldest row it
// handled. It returns how many rows it read and whether it stopped at the
// limit with rows left in the batch.
func (s *Store) auditBatch(ctx context.Context, q control.AuditQuery, cursor *int64, batch int, out *[]api.AuditEntry) (int, bool, error) {
	var rows pgx.Rows
	var err error
	if q.Module == "" {
		rows, err = s.pool.Query(ctx, `SELECT id, entry FROM control_audit WHERE id < $1 ORDER BY id DESC LIMIT $2`, *cursor, batch)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT id, entry FROM control_audit WHERE id < $1 AND module IN ($2, '') ORDER BY id DESC LIMIT $3`, *cursor, q.Module, batch)
	}
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if len(*out) == q.Limit {
			return n, true, nil
		}
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return n, false, err
		}
		n++
		*cursor = id
		var e api.AuditEntry
		if err := json.Unmarshal(b, &e); err != nil {
			continue // an entry written by hand; the file store skips a torn line too
		}
		if q.Module != "" && e.Module != q.Module && !control.Touches(e, q.Module) {
			continue
		}
		*out = append(*out, e)
	}
	return n, false, rows.Err()
}

// Register implements control.Store. The expiry is the database clock's
// now plus ttl, and created is true when the row was inserted or its
// previous registration had expired, which registered_at records.
func (s *Store) Register(ctx context.Context, service, url string, ttl time.Duration) (bool, error) {
	if err := s.ready("register"); err != nil {
		return false, err
	}
	var created bool
	err := s.pool.QueryRow(ctx, `
INSERT INTO control_instances AS i (service, url, registered_at, expires_at)
VALUES ($1, $2, now(), now() + $3 * interval '1 microsecond')
ON CONFLICT (service, url) DO UPDATE SET
    expires_at = EXCLUDED.expires_at,
    registered_at = CASE WHEN i.expires_at > now() THEN i.registered_at ELSE now() END
RETURNING registered_at = now()`, service, url, ttl.Microseconds()).Scan(&created)
	if err != nil {
		return false, fmt.Errorf("pgstore: register %s: %w", service, err)
	}
	return created, nil
}

// Deregister implements control.Store.
func (s *Store) Deregister(ctx context.Context, service, url string) (bool, error) {
	if err := s.ready("deregister"); err != nil {
		return false, err
	}
	var live bool
	err := s.pool.QueryRow(ctx, `DELETE FROM control_instances WHERE service = $1 AND url = $2 RETURNING expires_at > now()`, service, url).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: deregister %s: %w", service, err)
	}
	return live, nil
}

// Instances implements control.Store. It deletes the expired
// registrations in the same statement, as the file store forgets them.
func (s *Store) Instances(ctx context.Context) (map[string][]control.Instance, error) {
	if err := s.ready("instances"); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
WITH gone AS (DELETE FROM control_instances WHERE expires_at <= now())
SELECT service, url, expires_at FROM control_instances WHERE expires_at > now() ORDER BY service, url COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: instances: %w", err)
	}
	defer rows.Close()
	out := map[string][]control.Instance{}
	for rows.Next() {
		var service string
		var in control.Instance
		if err := rows.Scan(&service, &in.URL, &in.ExpiresAt); err != nil {
			return nil, fmt.Errorf("pgstore: instances: %w", err)
		}
		out[service] = append(out[service], in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: instances: %w", err)
	}
	return out, nil
}

// Close implements control.Store: it stops the listener, waits for it,
// and closes the pool. A second Close does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	first := !s.closed.Swap(true)
	s.mu.Unlock()
	if !first {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}
