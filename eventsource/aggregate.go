package eventsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stranglerkit/strangler/db"
)

// Snapshot is a stream's state at a version, saved so that loading it
// folds only the events after that version.
type Snapshot struct {
	// Version is the stream version the state includes.
	Version int64
	// SchemaVersion is the version of the state's encoding; a snapshot of
	// another encoding than the reader's is ignored.
	SchemaVersion int
	// State is the encoded state.
	State json.RawMessage
}

// SaveSnapshot keeps snap as aggregateID's snapshot, unless the stored one
// is at the same version or newer. It joins the transaction ctx carries.
func (s *SQLStore) SaveSnapshot(ctx context.Context, aggregateID string, snap Snapshot) error {
	err := db.Conn(ctx, s.db).Exec(`INSERT INTO es_snapshots (aggregate_type, aggregate_id, version, schema_version, state, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = excluded.version, schema_version = excluded.schema_version,
    state = excluded.state, created_at = excluded.created_at
WHERE es_snapshots.version < excluded.version`,
		s.opt.AggregateType, aggregateID, snap.Version, snap.SchemaVersion, string(snap.State), s.opt.Now().UTC()).Error
	if err != nil {
		return fmt.Errorf("eventsource: save snapshot of %s %s at version %d: %w", s.opt.AggregateType, aggregateID, snap.Version, err)
	}
	return nil
}

// LoadSnapshot returns aggregateID's snapshot, and false when it has none.
func (s *SQLStore) LoadSnapshot(ctx context.Context, aggregateID string) (Snapshot, bool, error) {
	var rows []struct {
		Version       int64  `gorm:"column:version"`
		SchemaVersion int    `gorm:"column:schema_version"`
		State         string `gorm:"column:state"`
	}
	err := db.Conn(ctx, s.db).Raw("SELECT version, schema_version, state FROM es_snapshots WHERE aggregate_type = ? AND aggregate_id = ?",
		s.opt.AggregateType, aggregateID).Scan(&rows).Error
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("eventsource: load snapshot of %s %s: %w", s.opt.AggregateType, aggregateID, err)
	}
	if len(rows) == 0 {
		return Snapshot{}, false, nil
	}
	return Snapshot{Version: rows[0].Version, SchemaVersion: rows[0].SchemaVersion, State: []byte(rows[0].State)}, true, nil
}

// Aggregate loads and changes streams whose state is an S: the fold of
// their events, from a snapshot when there is one.
type Aggregate[S any] struct {
	// Store holds the streams.
	Store *SQLStore
	// Apply folds one event into the state. Required. It must accept
	// every event type of the stream, at its latest schema version.
	Apply func(state S, ev Event) (S, error)
	// SnapshotEvery saves a snapshot (S encoded as JSON) whenever a
	// change takes the stream past a multiple of it. If zero, no snapshots
	// are taken or read.
	SnapshotEvery int64
	// SnapshotVersion is the version of S's JSON encoding; raise it when S
	// changes incompatibly, and older snapshots are ignored. If zero, 1.
	SnapshotVersion int
	// Attempts bounds how often Update runs its command when another
	// writer appends in between (ErrConcurrency). If zero, 3.
	Attempts int
}

func (a Aggregate[S]) snapshotVersion() int { return max(a.SnapshotVersion, 1) }

// Load returns aggregateID's state and version; a stream with no events
// has the zero S at version 0.
func (a Aggregate[S]) Load(ctx context.Context, aggregateID string) (S, int64, error) {
	var (
		state   S
		version int64
	)
	if a.SnapshotEvery > 0 {
		snap, ok, err := a.Store.LoadSnapshot(ctx, aggregateID)
		if err != nil {
			return state, 0, err
		}
		if ok && snap.SchemaVersion == a.snapshotVersion() {
			if err := json.Unmarshal(snap.State, &state); err != nil {
				return state, 0, fmt.Errorf("eventsource: decode snapshot of %s %s: %w", a.Store.AggregateType(), aggregateID, err)
			}
			version = snap.Version
		}
	}
	events, err := a.Store.Load(ctx, aggregateID, version)
	if err != nil {
		return state, 0, err
	}
	return a.fold(state, version, events)
}

func (a Aggregate[S]) fold(state S, version int64, events []Event) (S, int64, error) {
	for _, ev := range events {
		next, err := a.Apply(state, ev)
		if err != nil {
			return state, version, fmt.Errorf("eventsource: apply %s to %s %s at version %d: %w", ev.Type, ev.AggregateType, ev.AggregateID, ev.Version, err)
		}
		state, version = next, ev.Version
	}
	return state, version, nil
}

// Update runs cmd on aggregateID's current state and version and appends
// the events it returns; cmd returns none to change nothing, or an error
// to refuse the command. When another writer appended in between, it loads
// the stream again and runs cmd again, up to Attempts times, then returns
// the *ErrConcurrency. It returns the new state and version, and saves a
// snapshot in the same transaction when one is due.
func (a Aggregate[S]) Update(ctx context.Context, aggregateID string, cmd func(state S, version int64) ([]Event, error)) (S, int64, error) {
	attempts := a.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	for i := 1; ; i++ {
		state, version, err := a.update(ctx, aggregateID, cmd)
		var conflict *ErrConcurrency
		if err == nil || !errors.As(err, &conflict) || i >= attempts {
			return state, version, err
		}
	}
}

func (a Aggregate[S]) update(ctx context.Context, aggregateID string, cmd func(S, int64) ([]Event, error)) (S, int64, error) {
	var (
		state   S
		version int64
	)
	err := db.Transact(ctx, a.Store.DB(), func(ctx context.Context) error {
		cur, v, err := a.Load(ctx, aggregateID)
		if err != nil {
			return err
		}
		events, err := cmd(cur, v)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			state, version = cur, v
			return nil
		}
		if _, err := a.Store.Append(ctx, aggregateID, v, events...); err != nil {
			return err
		}
		for i := range events {
			events[i].AggregateType, events[i].AggregateID, events[i].Version = a.Store.AggregateType(), aggregateID, v+int64(i)+1
			if events[i].SchemaVersion <= 0 {
				events[i].SchemaVersion = 1
			}
		}
		state, version, err = a.fold(cur, v, events)
		if err != nil {
			return err
		}
		if a.SnapshotEvery > 0 && version/a.SnapshotEvery > v/a.SnapshotEvery {
			enc, err := json.Marshal(state)
			if err != nil {
				return fmt.Errorf("eventsource: encode snapshot of %s %s: %w", a.Store.AggregateType(), aggregateID, err)
			}
			return a.Store.SaveSnapshot(ctx, aggregateID, Snapshot{Version: version, SchemaVersion: a.snapshotVersion(), State: enc})
		}
		return nil
	})
	return state, version, err
}
