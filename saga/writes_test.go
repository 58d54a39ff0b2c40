package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestGormStoreNumbersWithoutReading checks that a Save after the store's
// own Create or Save numbers its entries without reading the log, and
// that a store that did not write the saga last (another process, a saga
// read back after a restart) reads the log's end and numbers right.
func TestGormStoreNumbersWithoutReading(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn)
		now := time.Now().UTC()
		s := &Saga{ID: "numbers", Name: "n", State: Running, CreatedAt: now, UpdatedAt: now}
		if _, err := e.store.Create(ctx, s, Entry{Event: EventState, State: Running, At: now}); err != nil {
			t.Fatal(err)
		}
		stmts := dbtest.CountStatements(t, e.gdb)
		if err := e.store.Save(ctx, s, Entry{Step: "a", Event: StepStarted, Attempt: 1, At: now}, Entry{Step: "a", Event: StepSucceeded, Attempt: 1, At: now}); err != nil {
			t.Fatal(err)
		}
		if n := stmts.Load(); n != 2 {
			t.Errorf("a Save after the store's own write ran %d statements, want 2 (the update, the insert)", n)
		}
		// A second store on the same database has not written the saga.
		other := NewGormStore(e.gdb)
		got, err := other.Get(ctx, s.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		stmts.Store(0)
		if err := other.Save(ctx, got, Entry{Step: "b", Event: StepStarted, Attempt: 1, At: now}); err != nil {
			t.Fatal(err)
		}
		if n := stmts.Load(); n != 3 {
			t.Errorf("a Save of a saga read back ran %d statements, want 3 (the update, the log's end, the insert)", n)
		}
		// The first store's record is stale now: its Save of the old
		// version is refused, and one of the saga read back numbers on.
		if err := e.store.Save(ctx, s, Entry{Step: "c", Event: StepStarted, Attempt: 1, At: now}); err == nil {
			t.Error("a Save of a stale version was not refused")
		}
		if got, err = e.store.Get(ctx, s.ID, false); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Save(ctx, got, Entry{Step: "c", Event: StepStarted, Attempt: 1, At: now}); err != nil {
			t.Fatal(err)
		}
		final, err := e.store.Get(ctx, s.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := trail(final.Log); !slices.Equal(got, []string{"running", "started:a", "succeeded:a", "started:b", "started:c"}) {
			t.Errorf("log %s", join(got))
		}
		for n, en := range final.Log {
			if en.N != n+1 {
				t.Errorf("entry %d is numbered %d", n+1, en.N)
			}
		}
	})
}

// TestGormStoreGroupCommit writes queued saves of several sagas as one
// group: each is checked against its own version, the stale one is
// refused while the others commit with one INSERT of the log between
// them, and a group that fails is written again save by save, so that
// only the saga at fault fails.
func TestGormStoreGroupCommit(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn)
		now := time.Now().UTC()
		create := func(id string) *Saga {
			s := &Saga{ID: id, Name: "n", State: Running, CreatedAt: now, UpdatedAt: now}
			if _, err := e.store.Create(ctx, s, Entry{Event: EventState, State: Running, At: now}); err != nil {
				t.Fatal(err)
			}
			return s
		}
		queue := func(sagas ...*Saga) []*saveReq {
			var group []*saveReq
			for _, s := range sagas {
				group = append(group, &saveReq{ctx: ctx, s: s, entries: []Entry{{Step: "a", Event: StepSucceeded, Attempt: 1, At: now}, {Step: "b", Event: StepStarted, Attempt: 1, At: now}},
					done: make(chan saveResult, 1)})
			}
			return group
		}
		results := func(group []*saveReq) []error {
			errs := make([]error, len(group))
			for i, r := range group {
				errs[i] = (<-r.done).err
			}
			return errs
		}
		checkLog := func(id string, want []string) {
			t.Helper()
			s, err := e.store.Get(ctx, id, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := trail(s.Log); !slices.Equal(got, want) {
				t.Errorf("%s: log %s, want %s", id, join(got), join(want))
			}
			for n, en := range s.Log {
				if en.N != n+1 {
					t.Errorf("%s: entry %d is numbered %d", id, n+1, en.N)
				}
			}
		}
		a, b, c := create("group-a"), create("group-b"), create("group-c")
		staleC := *c
		staleC.Version = 7
		stmts := dbtest.CountStatements(t, e.gdb)
		group := queue(b, a, &staleC)
		e.store.writeGroup(ctx, group)
		errs := results(group)
		if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrStale) {
			t.Fatalf("group of two current sagas and a stale one: %v, want nil, nil, ErrStale", errs)
		}
		if n := stmts.Load(); n != 4 {
			t.Errorf("the group ran %d statements, want 4: three updates, one insert", n)
		}
		if a.Version != 2 || b.Version != 2 || staleC.Version != 7 {
			t.Errorf("versions after the group: %d, %d, %d; want 2, 2, 7", a.Version, b.Version, staleC.Version)
		}
		checkLog("group-a", []string{"running", "succeeded:a", "started:b"})
		checkLog("group-c", []string{"running"})

		// A wrong record of b's log makes its rows collide with its
		// entries: the group fails, and then only b's own save.
		e.store.logLens.Store(b.ID, logLen{version: b.Version, n: 0})
		group = queue(a, b, c)
		e.store.writeGroup(ctx, group)
		errs = results(group)
		if errs[0] != nil || errs[1] == nil || errs[2] != nil {
			t.Fatalf("group with a colliding save: %v, want nil, an error, nil", errs)
		}
		checkLog("group-a", []string{"running", "succeeded:a", "started:b", "succeeded:a", "started:b"})
		checkLog("group-b", []string{"running", "succeeded:a", "started:b"})
		checkLog("group-c", []string{"running", "succeeded:a", "started:b"})
	})
}

// TestGormStoreConcurrentSaves has many sagas save at once, as the
// orchestrator's workers do, and checks that every save committed once,
// numbered in order, whatever groups they went in.
func TestGormStoreConcurrentSaves(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn)
		now := time.Now().UTC()
		const sagas, saves = 16, 10
		var wg sync.WaitGroup
		errs := make(chan error, sagas)
		for i := range sagas {
			wg.Go(func() {
				s := &Saga{ID: fmt.Sprintf("many-%d", i), Name: "n", State: Running, CreatedAt: now, UpdatedAt: now}
				if _, err := e.store.Create(ctx, s, Entry{Event: EventState, State: Running, At: now}); err != nil {
					errs <- err
					return
				}
				for j := range saves {
					s.StepIndex = j + 1
					if err := e.store.Save(ctx, s, Entry{Step: fmt.Sprint(j), Event: StepStarted, Attempt: 1, At: now}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range sagas {
			s, err := e.store.Get(ctx, fmt.Sprintf("many-%d", i), true)
			if err != nil {
				t.Fatal(err)
			}
			if s.Version != saves+1 || s.StepIndex != saves || len(s.Log) != saves+1 {
				t.Errorf("%s: version %d, step %d, %d entries; want %d, %d, %d", s.ID, s.Version, s.StepIndex, len(s.Log), saves+1, saves, saves+1)
			}
			for n, en := range s.Log {
				if en.N != n+1 || n > 0 && en.Step != fmt.Sprint(n-1) {
					t.Errorf("%s: entry %d is %d %q", s.ID, n+1, en.N, en.Step)
				}
			}
		}
		e.store.mu.Lock()
		defer e.store.mu.Unlock()
		if e.store.leading || len(e.store.queue) > 0 {
			t.Errorf("after the saves the store still leads (%v) or queues %d", e.store.leading, len(e.store.queue))
		}
	})
}
