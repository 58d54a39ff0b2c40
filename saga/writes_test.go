package saga

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
)

// countingStore counts the writes of the saga log and checks, at each
// attempt of a step, that the store holds that attempt's start.
type countingStore struct {
	*GormStore
	mu     sync.Mutex
	writes int
}

func (c *countingStore) Create(ctx context.Context, s *Saga, entries ...Entry) (bool, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.GormStore.Create(ctx, s, entries...)
}

func (c *countingStore) Save(ctx context.Context, s *Saga, entries ...Entry) error {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.GormStore.Save(ctx, s, entries...)
}

// TestSagaLogWrites runs the test saga to each end and counts the writes
// of its log: one for the creation with the first step's start, one per
// step with its success and the next start, and a failure written at
// once. Each attempt finds its start in the store before it acts, and the
// log reads as it always did.
func TestSagaLogWrites(t *testing.T) {
	cases := []struct {
		name       string
		setup      func(p *plan)
		wantState  State
		wantTrail  []string
		wantWrites int
	}{
		{
			name: "every step succeeds", wantState: Completed,
			wantTrail: cat([]string{"running"}, fwd(stepNames...), []string{"completed"}),
			// Create; reserve's success with authorize's start; authorize's
			// with confirm's; confirm's with the completion.
			wantWrites: 4,
		},
		{
			name: "the last step is refused", setup: func(p *plan) { p.refuse["confirm"] = true }, wantState: Compensated,
			wantTrail: cat([]string{"running"}, fwd("reserve", "authorize"), []string{"started:confirm", "failed:confirm", "compensating"},
				comp("confirm", "authorize", "reserve"), []string{"compensated"}),
			// The three forward writes, the failure, the state change with
			// confirm's compensation start, then each compensation's end
			// with the next start, the last with the final state.
			wantWrites: 8,
		},
		{
			name: "a step succeeds at its second attempt", setup: func(p *plan) { p.transient["authorize"] = 1 }, wantState: Completed,
			wantTrail: cat([]string{"running"}, fwd("reserve"), []string{"started:authorize", "failed:authorize"}, fwd("authorize", "confirm"), []string{"completed"}),
			// The failure and the retry's start are a write each.
			wantWrites: 6,
		},
	}
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				p := newPlan()
				if tc.setup != nil {
					tc.setup(p)
				}
				part := &participant{env: e, plan: p}
				name := fmt.Sprintf("writes%d", i)
				def := part.definition(name, fastRetry, time.Minute)
				var (
					mu     sync.Mutex
					unseen []string
				)
				// Each Do and Compensate first reads the log from the store
				// and looks for its own attempt's start as the last entry.
				for j := range def.Steps {
					st := &def.Steps[j]
					for _, f := range []struct {
						fn *func(context.Context, *Exec) error
						ev Event
					}{{&st.Do, StepStarted}, {&st.Compensate, StepCompensating}} {
						inner := *f.fn
						ev := f.ev
						*f.fn = func(ctx context.Context, x *Exec) error {
							s, err := e.store.Get(ctx, x.SagaID, true)
							if err != nil {
								return err
							}
							last := s.Log[len(s.Log)-1]
							if last.Step != x.Step || last.Event != ev || last.Attempt != x.Attempt {
								mu.Lock()
								unseen = append(unseen, fmt.Sprintf("%s:%s attempt %d (the log ends with %+v)", ev, x.Step, x.Attempt, last))
								mu.Unlock()
							}
							return inner(ctx, x)
						}
					}
				}
				cs := &countingStore{GormStore: e.store}
				o, err := New(Config{Store: cs, Definitions: []*Definition{def}, Rescan: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				running(t, o)
				untilRunning(t, o)
				id := fmt.Sprintf("writes-%d", i)
				if _, err := o.Start(ctx, name, id, map[string]string{}); err != nil {
					t.Fatal(err)
				}
				s := wait(t, o, id)
				if s.State != tc.wantState {
					t.Errorf("state %s, want %s (error %q)", s.State, tc.wantState, s.Error)
				}
				if got := trail(s.Log); !slices.Equal(got, tc.wantTrail) {
					t.Errorf("log\n got %s\nwant %s", join(got), join(tc.wantTrail))
				}
				for n, en := range s.Log {
					if en.N != n+1 {
						t.Errorf("entry %d is numbered %d", n+1, en.N)
					}
				}
				cs.mu.Lock()
				writes := cs.writes
				cs.mu.Unlock()
				if writes != tc.wantWrites {
					t.Errorf("%d writes of the log, want %d", writes, tc.wantWrites)
				}
				for _, u := range unseen {
					t.Errorf("an attempt acted before its start was in the store: %s", u)
				}
			})
		}
	})
}

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

// untilRunning waits, for at most a minute, until o.Run executes sagas,
// so that Start hands the saga to a worker at once.
func untilRunning(t *testing.T, o *Orchestrator) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		o.mu.Lock()
		ok := o.runCtx != nil
		o.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the orchestrator's Run did not start within a minute")
		}
		time.Sleep(time.Millisecond)
	}
}
