package saga

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

func noop(context.Context, *Exec) error { return nil }

// TestNewChecksDefinitions refuses each malformed configuration with a
// message that names the fault.
func TestNewChecksDefinitions(t *testing.T) {
	store := NewGormStore(nil)
	ok := &Definition{Name: "ok", Steps: []Step{{Name: "a", Do: noop}}}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Definitions: []*Definition{ok}}, "needs a store"},
		{"no definitions", Config{Store: store}, "at least one definition"},
		{"nil definition", Config{Store: store, Definitions: []*Definition{nil}}, "nil definition"},
		{"no name", Config{Store: store, Definitions: []*Definition{{Steps: ok.Steps}}}, "needs a name"},
		{"no steps", Config{Store: store, Definitions: []*Definition{{Name: "x"}}}, "has no steps"},
		{"unnamed step", Config{Store: store, Definitions: []*Definition{{Name: "x", Steps: []Step{{Do: noop}}}}}, "step 0 needs a name"},
		{"step twice", Config{Store: store, Definitions: []*Definition{{Name: "x", Steps: []Step{{Name: "a", Do: noop}, {Name: "a", Do: noop}}}}}, `"a" is used twice`},
		{"no Do", Config{Store: store, Definitions: []*Definition{{Name: "x", Steps: []Step{{Name: "a"}}}}}, `"a" needs a Do`},
		{"definition twice", Config{Store: store, Definitions: []*Definition{ok, ok}}, `"ok" is given twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestRetryWait checks the backoff: doubling from Backoff, capped at
// MaxBackoff, and jittered within its fraction.
func TestRetryWait(t *testing.T) {
	cases := []struct {
		name   string
		r      Retry
		failed int
		lo, hi time.Duration
	}{
		{"defaults, first wait", Retry{}, 1, 80 * time.Millisecond, 120 * time.Millisecond},
		{"doubles", Retry{Backoff: 10 * time.Millisecond, Jitter: -1}, 3, 40 * time.Millisecond, 40 * time.Millisecond},
		{"capped", Retry{Backoff: time.Second, MaxBackoff: 3 * time.Second, Jitter: -1}, 10, 3 * time.Second, 3 * time.Second},
		{"jitter half", Retry{Backoff: 100 * time.Millisecond, Jitter: 0.5}, 1, 50 * time.Millisecond, 150 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r.withDefaults()
			for range 200 {
				if d := r.wait(tc.failed); d < tc.lo || d > tc.hi {
					t.Fatalf("wait after %d failures: %s, want within [%s, %s]", tc.failed, d, tc.lo, tc.hi)
				}
			}
		})
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	if err := Permanent(ErrCompensated); !IsPermanent(err) || !errors.Is(err, ErrCompensated) || IsPermanent(ErrCompensated) {
		t.Errorf("Permanent does not mark or unwrap: %v", err)
	}
}

// TestStartIsIdempotent starts a saga twice under one id, which runs it
// once, and refuses the id for another definition, an unknown definition,
// an empty id and a second Run.
func TestStartIsIdempotent(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn)
		part := &participant{env: e, plan: newPlan()}
		o := newOrchestrator(t, e, nil, part.definition("one", fastRetry, time.Minute), part.definition("other", fastRetry, time.Minute))
		running(t, o)
		if _, err := o.Start(ctx, "one", "twice", map[string]string{}); err != nil {
			t.Fatal(err)
		}
		first := wait(t, o, "twice")
		again, err := o.Start(ctx, "one", "twice", map[string]string{"changed": "yes"})
		if err != nil {
			t.Fatal(err)
		}
		if again.State != Completed || again.Version != first.Version || string(again.Data) != string(first.Data) {
			t.Errorf("second Start: %+v, want the saga as the first left it: %+v", again, first)
		}
		effects, err := e.effects(ctx, "twice")
		if err != nil {
			t.Fatal(err)
		}
		if len(effects) != 3 {
			t.Errorf("effects %v, want each step once", effects)
		}
		for _, c := range []struct {
			name, def, id, want string
		}{
			{"another definition", "other", "twice", "exists as a saga of one"},
			{"unknown definition", "nobody", "x", "unknown saga definition"},
			{"empty id", "one", "", "the id is empty"},
		} {
			if _, err := o.Start(ctx, c.def, c.id, nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
			}
		}
		if err := o.Run(ctx); err == nil || !strings.Contains(err.Error(), "Run called twice") {
			t.Errorf("second Run: %v", err)
		}
	})
}

// TestLifecycle checks the orchestrator's lifecycle: New starts nothing,
// Run refuses a second call and, when its context ends during a step,
// returns with every goroutine it started ended and the saga left
// running for the next Run, which finishes it; Close is safe twice and
// no Run follows it.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dbtest.SQLiteDSN(t))
	entered := make(chan struct{}, 1)
	var hold atomic.Bool
	hold.Store(true)
	def := &Definition{Name: "held", Steps: []Step{{Name: "wait", Do: func(ctx context.Context, x *Exec) error {
		if !hold.Load() {
			return nil
		}
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}}}
	g := lifecycletest.Watch("strangler/saga.")
	o := newOrchestrator(t, e, prometheus.NewRegistry(), def)
	g.None(t, "after New")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	if _, err := o.Start(ctx, "held", "held-1", nil); err != nil {
		t.Fatal(err)
	}
	<-entered
	lifecycletest.Stop(t, o, cancel, done, g)
	if s, err := e.store.Get(ctx, "held-1", true); err != nil || s.State != Running || s.StepIndex != 0 {
		t.Fatalf("after Run ended mid-step: %v %+v", err, s)
	}
	if err := o.Run(ctx); err == nil {
		t.Error("Run after Close did not fail")
	}

	hold.Store(false)
	next := newOrchestrator(t, e, prometheus.NewRegistry(), def)
	running(t, next)
	if s := wait(t, next, "held-1"); s.State != Completed {
		t.Errorf("the next Run left the saga %s", s.State)
	}
}

// TestMigrationsRoundTrip applies the orchestrator's and the guard's
// sets, rolls them back to nothing and applies them again, on both
// databases, so that the down files undo what the up files do.
func TestMigrationsRoundTrip(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		sets := []db.Migrations{Migrations(), GuardMigrations()}
		for _, step := range []string{"up", "down", "up"} {
			var err error
			if step == "up" {
				err = db.MigrateUp(ctx, dsn, sets...)
			} else {
				err = db.MigrateDown(ctx, dsn, 0, sets...)
			}
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		st, err := db.MigrateStatus(ctx, dsn, sets...)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if s.Version != 1 || s.Pending != 0 || s.Dirty {
				t.Errorf("%s after up, down, up: %+v", s.Name, s)
			}
		}
	})
}
