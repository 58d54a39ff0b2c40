package eventsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
)

// openStore migrates the event store and the outbox into dsn and returns a
// store of "account" streams that publishes through the outbox.
func openStore(t *testing.T, dsn string, up *eventsource.Upcasters) (*eventsource.SQLStore, *gorm.DB) {
	t.Helper()
	gdb := changefeedtest.Open(t, dsn, eventsource.Migrations(), outbox.Migrations())
	s, err := eventsource.NewStore(gdb, eventsource.Options{AggregateType: "account", Outbox: &outbox.Writer{Source: "ledger"}, Upcasters: up})
	if err != nil {
		t.Fatal(err)
	}
	return s, gdb
}

// deposited is the test streams' one event payload.
type deposited struct {
	Cents int64 `json:"cents"`
}

func deposit(t testing.TB, cents int64) eventsource.Event {
	t.Helper()
	ev, err := eventsource.NewEvent("account.deposited", deposited{Cents: cents})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestAppendAndLoad appends to streams at expected versions, right and
// wrong, and checks the versions, the positions, what Load returns and that
// a conflict is an *ErrConcurrency that appended nothing.
func TestAppendAndLoad(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, _ := openStore(t, dsn, nil)
		steps := []struct {
			id          string
			expected    int64
			n           int
			wantVersion int64
			conflictAt  int64 // the stream's version in the conflict, or -1 for none
		}{
			{"a-1", 0, 2, 2, -1},
			{"a-2", 0, 1, 1, -1},
			{"a-1", 2, 1, 3, -1},
			{"a-1", 2, 1, 0, 3}, // stale
			{"a-2", 0, 1, 0, 1}, // a second "create"
			{"a-3", 5, 1, 0, 0}, // a version the new stream never had
		}
		for i, st := range steps {
			events := make([]eventsource.Event, st.n)
			for j := range events {
				events[j] = deposit(t, int64(100*i+j))
			}
			v, err := s.Append(ctx, st.id, st.expected, events...)
			var conflict *eventsource.ErrConcurrency
			switch {
			case st.conflictAt >= 0:
				if !errors.As(err, &conflict) || conflict.Actual != st.conflictAt || conflict.Expected != st.expected || conflict.AggregateID != st.id {
					t.Fatalf("step %d: Append(%s, %d) = %v, want a conflict at version %d", i, st.id, st.expected, err, st.conflictAt)
				}
			case err != nil || v != st.wantVersion:
				t.Fatalf("step %d: Append(%s, %d) = %d, %v; want version %d", i, st.id, st.expected, v, err, st.wantVersion)
			}
		}
		got, err := s.Load(ctx, "a-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		var cents []int64
		var last int64
		for i, ev := range got {
			var d deposited
			if err := ev.Decode(&d); err != nil {
				t.Fatal(err)
			}
			cents = append(cents, d.Cents)
			if ev.Version != int64(i+1) || ev.Position <= last || ev.AggregateType != "account" || ev.AggregateID != "a-1" || ev.SchemaVersion != 1 || ev.ID == uuid.Nil || ev.OccurredAt.IsZero() {
				t.Errorf("event %d: %+v", i, ev)
			}
			last = ev.Position
		}
		if want := []int64{0, 1, 200}; !slices.Equal(cents, want) {
			t.Errorf("a-1 holds deposits %v, want %v", cents, want)
		}
		if tail, err := s.Load(ctx, "a-1", 2); err != nil || len(tail) != 1 || tail[0].Version != 3 {
			t.Errorf("Load after version 2 = %+v, %v", tail, err)
		}
		if head, err := s.Head(ctx); err != nil || head != last {
			t.Errorf("Head = %d, %v; want %d", head, err, last)
		}
	})
}

// TestAppendPublishesThroughOutbox checks that each appended event has a
// copy with the same id in the outbox, and that a caller's transaction that
// rolls back leaves neither.
func TestAppendPublishesThroughOutbox(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, gdb := openStore(t, dsn, nil)
		if _, err := s.Append(ctx, "a-1", 0, deposit(t, 5), deposit(t, 7)); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err := db.Transact(ctx, gdb, func(ctx context.Context) error {
			if _, err := s.Append(ctx, "a-2", 0, deposit(t, 9)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("transaction = %v", err)
		}
		var rows []struct {
			ID          string `gorm:"column:id"`
			Source      string `gorm:"column:source"`
			AggregateID string `gorm:"column:aggregateid"`
			Type        string `gorm:"column:type"`
			Payload     string `gorm:"column:payload"`
		}
		if err := gdb.Raw("SELECT id, source, aggregateid, type, payload FROM outbox ORDER BY seq").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		stored, err := s.ReadAll(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || len(stored) != 2 {
			t.Fatalf("outbox holds %d events and the store %d, want 2 each: %+v", len(rows), len(stored), rows)
		}
		for i, r := range rows {
			var d deposited
			if err := json.Unmarshal([]byte(r.Payload), &d); err != nil {
				t.Fatal(err)
			}
			if r.ID != stored[i].ID.String() || r.Source != "ledger" || r.AggregateID != "a-1" || r.Type != "account.deposited" || d.Cents != []int64{5, 7}[i] {
				t.Errorf("outbox row %d = %+v, store event %+v", i, r, stored[i])
			}
		}
	})
}

// TestEventsAreAppendOnly checks that the table refuses to change or lose
// an event.
func TestEventsAreAppendOnly(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, gdb := openStore(t, dsn, nil)
		if _, err := s.Append(ctx, "a-1", 0, deposit(t, 5)); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{"UPDATE es_events SET type = 'x'", "DELETE FROM es_events"} {
			if err := gdb.Exec(stmt).Error; err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s = %v, want the append-only refusal", stmt, err)
			}
		}
	})
}

// TestReadAllPages reads the whole store in pages of every size and finds
// every event once, in position order.
func TestReadAllPages(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t, dbtest.SQLiteDSN(t), nil)
	for i := range 10 {
		if _, err := s.Append(ctx, fmt.Sprintf("a-%d", i%3), int64(i/3), deposit(t, int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{1, 3, 10, 11} {
		var got []int64
		for after := int64(0); ; {
			page, err := s.ReadAll(ctx, after, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > size {
				t.Fatalf("page of %d events, limit %d", len(page), size)
			}
			if len(page) == 0 {
				break
			}
			for _, ev := range page {
				var d deposited
				_ = ev.Decode(&d)
				got = append(got, d.Cents)
			}
			after = page[len(page)-1].Position
		}
		if want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
			t.Errorf("pages of %d: %v, want %v", size, got, want)
		}
	}
}

// TestConcurrentAppendsWithReader has writers append to their own streams
// and to one shared stream at once, each holding its transaction open a
// little after appending so that commits overlap, while a reader follows
// the global position as a projection does. The reader must find every
// committed event: none that committed late below a position it had passed
// (the sequence-order-is-not-commit-order trap on Postgres). The shared
// stream's conflicts must be *ErrConcurrency, and its versions gapless.
func TestConcurrentAppendsWithReader(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, gdb := openStore(t, dsn, nil)
		hold := "SELECT 1"
		if db.DialectOf(gdb) == db.Postgres {
			hold = "SELECT pg_sleep(0.002)"
		}
		const writers, appends = 6, 25
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			committed = map[uuid.UUID]bool{}
			conflicts int
		)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				own, ownVersion := fmt.Sprintf("w-%d", w), int64(0)
				for i := range appends {
					id, expected := own, ownVersion
					if i%5 == 0 {
						id = "shared"
						v, err := s.Version(ctx, id)
						if err != nil {
							t.Error(err)
							return
						}
						expected = v
					}
					ev := deposit(t, int64(w*1000+i))
					ev.ID = uuid.Must(uuid.NewV7())
					err := db.Transact(ctx, gdb, func(ctx context.Context) error {
						if _, err := s.Append(ctx, id, expected, ev); err != nil {
							return err
						}
						return db.Conn(ctx, gdb).Exec(hold).Error
					})
					var conflict *eventsource.ErrConcurrency
					switch {
					case errors.As(err, &conflict):
						mu.Lock()
						conflicts++
						mu.Unlock()
						if id != "shared" {
							t.Errorf("conflict on own stream %s: %v", id, err)
						}
					case err != nil:
						t.Error(err)
						return
					default:
						if id == own {
							ownVersion++
						}
						mu.Lock()
						committed[ev.ID] = true
						mu.Unlock()
					}
				}
			}()
		}
		// The reader follows the position until the writers are done and a
		// read after that finds nothing new.
		finish := follow(ctx, s, 7, nil)
		wg.Wait()
		seen, readErr := finish()
		if readErr != nil {
			t.Fatal(readErr)
		}
		for id := range committed {
			if _, ok := seen[id]; !ok {
				t.Errorf("event %s committed but the reader following the position never saw it", id)
			}
		}
		if len(seen) != len(committed) {
			t.Errorf("reader saw %d events, %d committed", len(seen), len(committed))
		}
		shared, err := s.Load(ctx, "shared", 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range shared {
			if ev.Version != int64(i+1) {
				t.Fatalf("shared stream: event %d at version %d", i, ev.Version)
			}
		}
		if want := writers*appends/5 - conflicts; len(shared) != want {
			t.Errorf("shared stream holds %d events, want %d (%d conflicts)", len(shared), want, conflicts)
		}
		t.Logf("%d events committed, %d conflicts on the shared stream", len(committed), conflicts)
	})
}

// follow starts reading every stream of s by position, in pages of size,
// as a projection does; after each page it calls check, if not nil, with
// the highest position read and how many events it has read. The function
// it returns stops the reader once a read after the call finds nothing
// new, and returns the position of each event read, or the first error.
func follow(ctx context.Context, s *eventsource.SQLStore, size int, check func(after int64, seen int) error) func() (map[uuid.UUID]int64, error) {
	stop, done := make(chan struct{}), make(chan struct{})
	seen := map[uuid.UUID]int64{}
	var readErr error
	go func() {
		defer close(done)
		readErr = readAll(ctx, s, size, stop, seen, check)
	}()
	return func() (map[uuid.UUID]int64, error) {
		close(stop)
		<-done
		return seen, readErr
	}
}

// readAll is follow's reader, until stop is closed and a read after that
// finds nothing new.
func readAll(ctx context.Context, s *eventsource.SQLStore, size int, stop <-chan struct{}, seen map[uuid.UUID]int64, check func(after int64, seen int) error) error {
	var after int64
	for {
		stopped := false
		select {
		case <-stop:
			stopped = true
		default:
		}
		page, err := s.ReadAll(ctx, after, size)
		if err != nil {
			return err
		}
		for _, ev := range page {
			if ev.Position <= after {
				return fmt.Errorf("position %d after %d", ev.Position, after)
			}
			seen[ev.ID] = ev.Position
			after = ev.Position
		}
		if check != nil {
			if err := check(after, len(seen)); err != nil {
				return err
			}
		}
		if len(page) == 0 {
			if stopped {
				return nil
			}
			time.Sleep(time.Millisecond) // a poll interval, as a projection runner has
		}
	}
}
