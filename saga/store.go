package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
)

// Saga is one saga as the store holds it.
type Saga struct {
	// Seq orders sagas by creation; listings page on it.
	Seq int64 `json:"seq"`
	// ID is the saga's id, chosen by who starts it (an order id, say).
	ID string `json:"id"`
	// Name is its definition's name.
	Name string `json:"name"`
	// State is where it stands.
	State State `json:"state"`
	// StepIndex is the next step to run while running, and the next step
	// to compensate (counting down to -1) while compensating or manual.
	StepIndex int `json:"step_index"`
	// Data is the saga's JSON data, as the steps left it.
	Data json.RawMessage `json:"data"`
	// Error is the failure that started the compensation, or that parked
	// the saga in manual.
	Error string `json:"error,omitempty"`
	// Version counts the saga's changes; Save refuses a stale one.
	Version int64 `json:"version"`
	// CreatedAt and UpdatedAt stamp the saga.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Log is the saga's log, oldest first, when the store was asked for it.
	Log []Entry `json:"log,omitempty"`
}

// Event names an entry of the saga log.
type Event string

// The events of the saga log. The step events are written before the
// orchestrator acts on them: started before Do, compensating before
// Compensate.
const (
	// EventState records a change of the saga's state (Entry.State).
	EventState Event = "state"
	// StepStarted is written before an attempt of Do.
	StepStarted Event = "started"
	// StepSucceeded is written, with the saga's data, when Do succeeded.
	StepSucceeded Event = "succeeded"
	// StepFailed records a failed attempt of Do.
	StepFailed Event = "failed"
	// StepCompensating is written before an attempt of Compensate.
	StepCompensating Event = "compensating"
	// StepCompensated is written when Compensate succeeded.
	StepCompensated Event = "compensated"
	// StepCompensationFailed records a failed attempt of Compensate.
	StepCompensationFailed Event = "compensation_failed"
)

// Entry is one entry of the saga log.
type Entry struct {
	// N numbers the saga's entries from 1.
	N int `json:"n"`
	// Step is the step's name; empty for a state change.
	Step string `json:"step,omitempty"`
	// Event is what happened.
	Event Event `json:"event"`
	// State is the new state of an EventState entry.
	State State `json:"state,omitempty"`
	// Attempt is the attempt of a step event, from 1.
	Attempt int `json:"attempt,omitempty"`
	// Error is a failed attempt's error, or an operator's reason.
	Error string `json:"error,omitempty"`
	// At stamps the entry.
	At time.Time `json:"at"`
}

// Filter selects sagas for List.
type Filter struct {
	// State keeps the sagas in that state. If empty, all.
	State State
	// Before keeps the sagas with a Seq below it, for the next page. If
	// zero, the newest.
	Before int64
	// Limit caps the page. If zero, 50.
	Limit int
}

// ErrNotFound is returned for a saga id the store does not hold.
var ErrNotFound = errors.New("saga not found")

// ErrStale is returned by Save when the saga changed since it was read:
// another orchestrator, or an operator, got there first.
var ErrStale = errors.New("saga changed since it was read")

// Store persists sagas and their log. Save writes the saga and its new
// log entries in one transaction, so that the log and the state never
// disagree.
type Store interface {
	// Create inserts s, in version 1, with its first entries, and reports
	// true; it reports false, and leaves the store as it was, when a saga
	// with s.ID exists.
	Create(ctx context.Context, s *Saga, entries ...Entry) (bool, error)
	// Get returns the saga, with its log when withLog is set.
	Get(ctx context.Context, id string, withLog bool) (*Saga, error)
	// Save writes s, whose Version must be the stored one (else ErrStale),
	// with entries appended to its log; it increments s.Version.
	Save(ctx context.Context, s *Saga, entries ...Entry) error
	// List returns a page of sagas, newest first, without their logs.
	List(ctx context.Context, f Filter) ([]Saga, error)
	// Unfinished returns the ids of the running and compensating sagas,
	// oldest first.
	Unfinished(ctx context.Context) ([]string, error)
	// Count returns how many sagas are in each state.
	Count(ctx context.Context) (map[State]int, error)
}

// Migrations is the set of the orchestrator's tables (saga_instances and
// saga_log), version table schema_migrations_saga: add it to the sets the
// orchestrating service applies to its database.
func Migrations() db.Migrations {
	return db.Migrations{Name: "saga", FS: migrations.FS("saga")}
}

// GormStore is the Store on a gorm database, SQLite or Postgres, migrated
// with Migrations.
type GormStore struct {
	gdb *gorm.DB
	// logLens holds, per unfinished saga this store wrote, its version and
	// the number of its last log entry as of that write, so that the next
	// Save of that version numbers its entries without reading the log.
	// Save's version check makes a stale record harmless: the saga's
	// version has moved past it, and Save refuses or reads the log.
	logLens sync.Map // saga id -> logLen

	// mu guards the group commit of Save: queue holds the saves waiting
	// for the one in flight, and leading reports that a caller writes
	// them (see Save).
	mu      sync.Mutex
	queue   []*saveReq
	leading bool
}

// saveReq is one Save waiting in the group commit.
type saveReq struct {
	ctx     context.Context
	s       *Saga
	entries []Entry
	done    chan saveResult
}

// saveResult answers a saveReq: its outcome, or that its caller leads
// the next group now.
type saveResult struct {
	err  error
	lead bool
}

// logLen is a saga's last log entry number as of its version.
type logLen struct {
	version int64
	n       int
}

// NewGormStore returns the store on gdb.
func NewGormStore(gdb *gorm.DB) *GormStore { return &GormStore{gdb: gdb} }

type sagaRow struct {
	Seq       int64 `gorm:"primaryKey;autoIncrement"`
	ID        string
	Name      string
	State     string
	StepIndex int
	Data      string
	Error     string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (sagaRow) TableName() string { return "saga_instances" }

type logRow struct {
	SagaID   string `gorm:"primaryKey"`
	N        int    `gorm:"primaryKey"`
	Step     string
	Event    string
	State    string
	Attempt  int
	Error    string
	LoggedAt time.Time
}

func (logRow) TableName() string { return "saga_log" }

func toRow(s *Saga) sagaRow {
	data := string(s.Data)
	if data == "" {
		data = "{}"
	}
	return sagaRow{Seq: s.Seq, ID: s.ID, Name: s.Name, State: string(s.State), StepIndex: s.StepIndex,
		Data: data, Error: s.Error, Version: s.Version, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}
}

func (r sagaRow) saga() Saga {
	return Saga{Seq: r.Seq, ID: r.ID, Name: r.Name, State: State(r.State), StepIndex: r.StepIndex,
		Data: json.RawMessage(r.Data), Error: r.Error, Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// appendLog writes entries after the saga's last one, last (or the one
// the log holds, when last is negative), numbering them, and returns the
// number of the last one written.
func appendLog(ctx context.Context, gdb *gorm.DB, id string, last int, entries []Entry) (int, error) {
	if len(entries) == 0 {
		return last, nil
	}
	rows, last, err := logRows(ctx, gdb, id, last, entries)
	if err != nil {
		return 0, err
	}
	// WriteInserts writes the rows in one statement past gorm's builder,
	// inside the write transaction.
	if err := db.WriteInserts(db.Conn(ctx, gdb), db.Insert{Table: "saga_log", Columns: logColumns, Rows: rows}); err != nil {
		return 0, fmt.Errorf("saga %s: append log: %w", id, err)
	}
	return last, nil
}

// logRows numbers entries after last (or after the log's last entry, read
// in ctx's transaction, when last is negative) and returns them as
// saga_log rows with the number of the last one.
func logRows(ctx context.Context, gdb *gorm.DB, id string, last int, entries []Entry) ([][]any, int, error) {
	if last < 0 {
		if err := db.Conn(ctx, gdb).Model(&logRow{}).Where("saga_id = ?", id).
			Select("COALESCE(MAX(n), 0)").Scan(&last).Error; err != nil {
			return nil, 0, fmt.Errorf("saga %s: read log: %w", id, err)
		}
	}
	rows := make([][]any, len(entries))
	for i, e := range entries {
		last++
		entries[i].N = last
		rows[i] = []any{id, last, e.Step, string(e.Event), string(e.State), e.Attempt, e.Error, e.At.UTC()}
	}
	return rows, last, nil
}

// logColumns are saga_log's columns in the order appendLog writes them.
var logColumns = []string{"saga_id", "n", "step", "event", "state", "attempt", "error", "logged_at"}

// remember records the saga's log length as of its version, or forgets it
// once the saga is final, when the orchestrator writes it no more.
func (g *GormStore) remember(s *Saga, n int) {
	if s.State.Final() {
		g.logLens.Delete(s.ID)
		return
	}
	g.logLens.Store(s.ID, logLen{version: s.Version, n: n})
}

// Create implements Store.
func (g *GormStore) Create(ctx context.Context, s *Saga, entries ...Entry) (bool, error) {
	created := false
	err := db.Transact(ctx, g.gdb, func(ctx context.Context) error {
		s.Version = 1
		row := toRow(s)
		res := db.Conn(ctx, g.gdb).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoNothing: true}).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("saga %s: create: %w", s.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		created = true
		s.Seq = row.Seq
		// A new saga has no log: its entries are numbered from 1.
		n, err := appendLog(ctx, g.gdb, s.ID, 0, entries)
		if err == nil {
			g.remember(s, n)
		}
		return err
	})
	return created, err
}

// Get implements Store.
func (g *GormStore) Get(ctx context.Context, id string, withLog bool) (*Saga, error) {
	var row sagaRow
	err := db.Conn(ctx, g.gdb).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("saga %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("saga %q: %w", id, err)
	}
	s := row.saga()
	if withLog {
		var rows []logRow
		if err := db.Conn(ctx, g.gdb).Where("saga_id = ?", id).Order("n").Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("saga %q: read log: %w", id, err)
		}
		s.Log = make([]Entry, len(rows))
		for i, r := range rows {
			s.Log[i] = Entry{N: r.N, Step: r.Step, Event: Event(r.Event), State: State(r.State),
				Attempt: r.Attempt, Error: r.Error, At: r.LoggedAt.UTC()}
		}
	}
	return &s, nil
}

// Save implements Store. Saves of different sagas that wait for one
// another commit together (group commit): the first caller writes the
// queued saves in one transaction, each with its own version check, while
// the ones that come meanwhile queue for the next, so that concurrent
// sagas take the database's write lock (SQLite) and commit (Postgres)
// once per group instead of once each. Each Save still returns only once
// its own write committed; a group that fails is written again save by
// save, so that one saga's failure is not another's. A Save in the
// transaction ctx carries joins it instead.
func (g *GormStore) Save(ctx context.Context, s *Saga, entries ...Entry) error {
	if db.InTx(ctx) {
		return g.saveOne(ctx, s, entries)
	}
	r := &saveReq{ctx: ctx, s: s, entries: entries, done: make(chan saveResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	for {
		if lead {
			g.writeQueued(ctx)
		}
		res := <-r.done
		if !res.lead {
			return res.err
		}
		lead = true
	}
}

// writeQueued writes the saves queued now as one group and answers them,
// then hands the lead to the first save queued meanwhile, if any.
func (g *GormStore) writeQueued(ctx context.Context) {
	g.mu.Lock()
	group := g.queue
	g.queue = nil
	g.mu.Unlock()
	g.writeGroup(ctx, group)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.leading = false
		return
	}
	g.queue[0].done <- saveResult{lead: true}
}

// writeGroup writes the saves of group in one transaction under ctx, the
// leader's, or a lone one under its own, and answers each.
func (g *GormStore) writeGroup(ctx context.Context, group []*saveReq) {
	live := group[:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- saveResult{err: fmt.Errorf("saga %s: save: %w", r.s.ID, err)}
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		r := live[0]
		r.done <- saveResult{err: g.saveOne(r.ctx, r.s, r.entries)}
		return
	}
	// The rows are locked in the order of the sagas' ids, the same in
	// every group.
	slices.SortFunc(live, func(a, b *saveReq) int { return strings.Compare(a.s.ID, b.s.ID) })
	stale := make([]bool, len(live))
	lasts := make([]int, len(live))
	err := db.Transact(ctx, g.gdb, func(ctx context.Context) error {
		var rows [][]any
		for i, r := range live {
			ok, err := g.update(ctx, r.s)
			if err != nil {
				return err
			}
			if !ok {
				stale[i] = true
				continue
			}
			rs, last, err := logRows(ctx, g.gdb, r.s.ID, g.knownLogLen(r.s), r.entries)
			if err != nil {
				return err
			}
			rows = append(rows, rs...)
			lasts[i] = last
		}
		if len(rows) == 0 {
			return nil
		}
		if err := db.WriteInserts(db.Conn(ctx, g.gdb), db.Insert{Table: "saga_log", Columns: logColumns, Rows: rows}); err != nil {
			return fmt.Errorf("sagas: append log: %w", err)
		}
		return nil
	})
	for i, r := range live {
		switch {
		case err != nil:
			// Written again on its own, under its own context.
			r.done <- saveResult{err: g.saveOne(r.ctx, r.s, r.entries)}
		case stale[i]:
			r.done <- saveResult{err: fmt.Errorf("saga %s version %d: %w", r.s.ID, r.s.Version, ErrStale)}
		default:
			r.s.Version++
			g.remember(r.s, lasts[i])
			r.done <- saveResult{}
		}
	}
}

// saveOne writes one save in its own transaction, or in the one ctx
// carries.
func (g *GormStore) saveOne(ctx context.Context, s *Saga, entries []Entry) error {
	return db.Transact(ctx, g.gdb, func(ctx context.Context) error {
		ok, err := g.update(ctx, s)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("saga %s version %d: %w", s.ID, s.Version, ErrStale)
		}
		n, err := appendLog(ctx, g.gdb, s.ID, g.knownLogLen(s), entries)
		if err != nil {
			return err
		}
		s.Version++
		g.remember(s, n)
		return nil
	})
}

// update writes s's row over its stored version and reports whether that
// version was the stored one.
func (g *GormStore) update(ctx context.Context, s *Saga) (bool, error) {
	row := toRow(s)
	res := db.Conn(ctx, g.gdb).Exec("UPDATE saga_instances SET state = ?, step_index = ?, data = ?, error = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?",
		row.State, row.StepIndex, row.Data, row.Error, s.Version+1, row.UpdatedAt, s.ID, s.Version)
	if res.Error != nil {
		return false, fmt.Errorf("saga %s: save: %w", s.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// knownLogLen is the number of s's last log entry as of its version, or -1
// when this store does not know it.
func (g *GormStore) knownLogLen(s *Saga) int {
	if v, ok := g.logLens.Load(s.ID); ok && v.(logLen).version == s.Version {
		return v.(logLen).n
	}
	return -1
}

// List implements Store.
func (g *GormStore) List(ctx context.Context, f Filter) ([]Saga, error) {
	q := db.Conn(ctx, g.gdb).Model(&sagaRow{})
	if f.State != "" {
		q = q.Where("state = ?", string(f.State))
	}
	if f.Before > 0 {
		q = q.Where("seq < ?", f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var rows []sagaRow
	if err := q.Order("seq DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list sagas: %w", err)
	}
	out := make([]Saga, len(rows))
	for i, r := range rows {
		out[i] = r.saga()
	}
	return out, nil
}

// Unfinished implements Store.
func (g *GormStore) Unfinished(ctx context.Context) ([]string, error) {
	var ids []string
	err := db.Conn(ctx, g.gdb).Model(&sagaRow{}).Where("state IN ?", []string{string(Running), string(Compensating)}).
		Order("seq").Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("list unfinished sagas: %w", err)
	}
	return ids, nil
}

// Count implements Store.
func (g *GormStore) Count(ctx context.Context) (map[State]int, error) {
	var rows []struct {
		State string
		N     int
	}
	if err := db.Conn(ctx, g.gdb).Model(&sagaRow{}).Select("state, COUNT(*) AS n").Group("state").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count sagas: %w", err)
	}
	out := map[State]int{}
	for _, r := range rows {
		out[State(r.State)] = r.N
	}
	return out, nil
}
