package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
)

// appendLocks counts the holders of the store's append lock (the advisory
// lock 1702063214/1 of migrations/eventsource's trigger) in gdb's
// database, as another session sees them.
func appendLocks(t *testing.T, gdb *gorm.DB) int64 {
	t.Helper()
	var n int64
	changefeedtest.Must(t, gdb.Raw(`SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
AND classid = 1702063214 AND objid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n).Error)
	return n
}

// TestAppendLocksAtCommit appends in a caller's transaction that goes on
// after the appends, as a changefeed consumer's covering many events does,
// and checks that the transaction does not hold the append lock before
// its commit, that it reads its own appends back (Version, Load, a second
// Append to the same stream), that a stale append in it is refused at once,
// and that everything commits, the outbox copies included.
func TestAppendLocksAtCommit(t *testing.T) {
	ctx := context.Background()
	s, gdb := openStore(t, dbtest.PostgresDSN(t), nil)
	if _, err := s.Append(ctx, "a-0", 0, deposit(t, 1)); err != nil {
		t.Fatal(err)
	}
	err := db.Transact(ctx, gdb, func(ctx context.Context) error {
		for _, step := range []struct {
			id       string
			expected int64
			n        int
		}{{"a-1", 0, 2}, {"a-2", 0, 1}, {"a-1", 2, 1}, {"a-0", 1, 1}} {
			events := make([]eventsource.Event, step.n)
			for i := range events {
				events[i] = deposit(t, int64(10*step.n+i))
			}
			if _, err := s.Append(ctx, step.id, step.expected, events...); err != nil {
				return err
			}
			if n := appendLocks(t, gdb); n != 0 {
				t.Errorf("after the append to %s at %d, %d sessions hold the append lock, want none before the commit", step.id, step.expected, n)
			}
		}
		var conflict *eventsource.ErrConcurrency
		if _, err := s.Append(ctx, "a-1", 2, deposit(t, 99)); !errors.As(err, &conflict) || conflict.Actual != 3 {
			t.Errorf("stale append in the transaction = %v, want a conflict at version 3", err)
		}
		if v, err := s.Version(ctx, "a-1"); err != nil || v != 3 {
			t.Errorf("Version(a-1) in the transaction = %d, %v; want 3", v, err)
		}
		evs, err := s.Load(ctx, "a-0", 0)
		if err != nil {
			return err
		}
		if len(evs) != 2 || evs[0].Version != 1 || evs[1].Version != 2 {
			t.Errorf("Load(a-0) in the transaction = %+v, want versions 1 and 2", evs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"a-0": 2, "a-1": 3, "a-2": 1} {
		evs, err := s.Load(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != want {
			t.Errorf("%s holds %d events, want %d", id, len(evs), want)
		}
		for i, ev := range evs {
			if ev.Version != int64(i+1) || ev.Position == 0 {
				t.Errorf("%s event %d: version %d, position %d", id, i, ev.Version, ev.Position)
			}
		}
	}
	var copies int64
	changefeedtest.Must(t, gdb.Raw("SELECT COUNT(*) FROM outbox o JOIN es_events e ON e.id = o.id").Scan(&copies).Error)
	if copies != 6 {
		t.Errorf("%d events have their outbox copy, want 6", copies)
	}
}

// TestAppendConflictAtCommit has another writer append to a stream after a
// transaction checked the stream's version and queued its own appends, and
// before that transaction commits: the commit must fail with an
// *ErrConcurrency, of the stream when the transaction appended to it alone,
// and write none of its events.
func TestAppendConflictAtCommit(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, dbtest.PostgresDSN(t), nil)
	for _, tc := range []struct {
		name    string
		streams []string // the transaction appends two events to each, one at a time
		other   string   // the stream the other writer appends to first
		wantID  string   // the conflict's AggregateID
	}{
		{name: "one stream", streams: []string{"a-1"}, other: "a-1", wantID: "a-1"},
		{name: "several streams", streams: []string{"b-1", "b-2"}, other: "b-2", wantID: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Transact(ctx, s.DB(), func(ctx context.Context) error {
				for _, id := range tc.streams {
					for v := range int64(2) {
						if _, err := s.Append(ctx, id, v, deposit(t, 1)); err != nil {
							return err
						}
					}
				}
				_, err := s.Append(context.Background(), tc.other, 0, deposit(t, 3)) // another writer, first to commit
				return err
			})
			var conflict *eventsource.ErrConcurrency
			if !errors.As(err, &conflict) || conflict.AggregateType != "account" || conflict.AggregateID != tc.wantID || tc.wantID != "" && conflict.Expected != 0 {
				t.Fatalf("commit = %v, want a conflict on %q at version 0", err, tc.wantID)
			}
			for _, id := range tc.streams {
				evs, err := s.Load(ctx, id, 0)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if id == tc.other {
					want = 1
				}
				if len(evs) != want {
					t.Errorf("%s holds %d events, want %d (the other writer's)", id, len(evs), want)
				}
			}
		})
	}
}

// TestConcurrentAppendsKeepCommitOrder is the store's ordering guarantee
// under commits that lag behind their positions: an AFTER INSERT trigger
// sleeps a random while (up to 3 ms) in every appending transaction,
// after the event's position is drawn and before the commit, while
// writers append to their own streams at once and a reader follows the
// position as a projection does. After every page, the reader counts the
// events at or below the highest position it has seen: any more than it
// has seen is an event that appeared below a position it had passed, which
// it would never read.
func TestConcurrentAppendsKeepCommitOrder(t *testing.T) {
	ctx := context.Background()
	s, gdb := openStore(t, dbtest.PostgresDSN(t), nil)
	for _, stmt := range []string{
		`CREATE FUNCTION test_lag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(random() * 0.003);
    RETURN NEW;
END
$$`,
		"CREATE TRIGGER test_lag AFTER INSERT ON es_events FOR EACH ROW EXECUTE FUNCTION test_lag()",
	} {
		changefeedtest.Must(t, gdb.Exec(stmt).Error)
	}
	const writers, appends = 6, 30
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		committed = map[uuid.UUID]bool{}
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appends {
				ev := deposit(t, int64(w*1000+i))
				ev.ID = uuid.Must(uuid.NewV7())
				if _, err := s.Append(ctx, fmt.Sprintf("w-%d", w), int64(i), ev); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				committed[ev.ID] = true
				mu.Unlock()
			}
		}()
	}
	finish := follow(ctx, s, 5, func(after int64, seen int) error {
		var below int
		if err := gdb.Raw("SELECT COUNT(*) FROM es_events WHERE position <= ?", after).Scan(&below).Error; err != nil {
			return err
		}
		if below != seen {
			return fmt.Errorf("%d events at or below position %d, of which the reader has seen %d: an event appeared below a position it had passed", below, after, seen)
		}
		return nil
	})
	wg.Wait()
	seen, readErr := finish()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if len(seen) != len(committed) || len(committed) != writers*appends {
		t.Errorf("reader saw %d events, %d committed, want %d", len(seen), len(committed), writers*appends)
	}
}
