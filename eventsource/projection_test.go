package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// balances is a projection of the account streams: each account's balance
// and event count in test_balances, and every applied position in
// test_applied, whose key refuses an event applied twice.
type balances struct {
	name   string
	failAt int64 // fails the event at this position, when not 0
}

func (b *balances) Name() string     { return b.name }
func (b *balances) Tables() []string { return []string{"test_balances", "test_applied"} }

func (b *balances) Apply(ctx context.Context, tx *gorm.DB, ev eventsource.Event) error {
	if ev.Type != "account.deposited" {
		return nil
	}
	if ev.Position == b.failAt {
		return errors.New("projection refuses this event")
	}
	var d deposited
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := tx.Exec("INSERT INTO test_applied (position) VALUES (?)", ev.Position).Error; err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO test_balances (account, cents, events) VALUES (?, ?, 1)
ON CONFLICT (account) DO UPDATE SET cents = test_balances.cents + excluded.cents, events = test_balances.events + 1`, ev.AggregateID, d.Cents).Error
}

type balance struct {
	Cents, Events int64
}

func createBalanceTables(t *testing.T, gdb *gorm.DB) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE test_balances (account TEXT PRIMARY KEY, cents BIGINT NOT NULL, events BIGINT NOT NULL)",
		"CREATE TABLE test_applied (position BIGINT PRIMARY KEY)",
	} {
		if err := gdb.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func readBalances(t testing.TB, gdb *gorm.DB) map[string]balance {
	t.Helper()
	var rows []struct {
		Account       string
		Cents, Events int64
	}
	if err := gdb.Raw("SELECT account, cents, events FROM test_balances").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]balance{}
	for _, r := range rows {
		out[r.Account] = balance{r.Cents, r.Events}
	}
	return out
}

// appendDeposits appends n deposits spread over accounts and returns the
// balances they add up to.
func appendDeposits(t *testing.T, s *eventsource.SQLStore, n, accounts int, want map[string]balance) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("a-%d", i%accounts)
		v, err := s.Version(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, id, v, deposit(t, int64(i+1))); err != nil {
			t.Fatal(err)
		}
		b := want[id]
		want[id] = balance{b.Cents + int64(i+1), b.Events + 1}
	}
}

func newRunner(t *testing.T, s *eventsource.SQLStore, opt eventsource.RunnerOptions, ps ...eventsource.Projection) *eventsource.Runner {
	t.Helper()
	r, err := eventsource.NewRunner(s, eventsource.RunnerConfig{Batch: 7, PollInterval: 10 * time.Millisecond, RetryInterval: 10 * time.Millisecond}, opt, ps...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestProjectionRebuild projects deposits, then rebuilds the projection
// from position 0 and finds the same tables, equal to the balances the
// deposits add up to; a rebuild of an unknown name is ErrUnknownProjection.
func TestProjectionRebuild(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, gdb := openStore(t, dsn, nil)
		createBalanceTables(t, gdb)
		want := map[string]balance{}
		appendDeposits(t, s, 40, 6, want)
		r := newRunner(t, s, eventsource.RunnerOptions{}, &balances{name: "balances"})
		if err := r.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		before := readBalances(t, gdb)
		if !maps.Equal(before, want) {
			t.Fatalf("projected %v, want %v", before, want)
		}
		if err := r.Rebuild(ctx, "balances"); err != nil {
			t.Fatal(err)
		}
		if after := readBalances(t, gdb); !maps.Equal(after, before) {
			t.Errorf("after rebuild %v, before %v", after, before)
		}
		st, err := r.Status(ctx)
		if err != nil || len(st) != 1 || st[0].Position != st[0].Head || st[0].LagEvents != 0 {
			t.Errorf("Status after rebuild = %+v, %v", st, err)
		}
		if err := r.Rebuild(ctx, "nope"); !errors.Is(err, eventsource.ErrUnknownProjection) {
			t.Errorf("Rebuild(nope) = %v", err)
		}
	})
}

// TestProjectionExactlyOnce runs two runners of one projection at once
// while events are appended, as two replicas of a service would: every
// event is applied once (test_applied refuses a second time), and the
// balances are the deposits' sums.
func TestProjectionExactlyOnce(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, gdb := openStore(t, dsn, nil)
		createBalanceTables(t, gdb)
		var wg sync.WaitGroup
		for range 2 {
			r := newRunner(t, s, eventsource.RunnerOptions{Logger: changefeedtest.Logger()}, &balances{name: "balances"})
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.Run(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		want := map[string]balance{}
		appendDeposits(t, s, 60, 5, want)
		changefeedtest.Eventually(t, 2*time.Minute, func() (bool, string) {
			got := readBalances(t, gdb)
			return maps.Equal(got, want), fmt.Sprintf("projected %v, want %v", got, want)
		})
		cancel()
		wg.Wait()
		var applied int64
		if err := gdb.Raw("SELECT COUNT(*) FROM test_applied").Scan(&applied).Error; err != nil || applied != 60 {
			t.Errorf("applied %d events, %v; want 60", applied, err)
		}
	})
}

// TestProjectionLag checks the lag metrics: they count the events not yet
// applied and the age of the oldest, and fall to 0 once the runner catches
// up. A projection that fails on an event keeps its checkpoint before the
// failing batch and its tables as they were, and its lag shows it.
func TestProjectionLag(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, gdb := openStore(t, dsn, nil)
		createBalanceTables(t, gdb)
		want := map[string]balance{}
		appendDeposits(t, s, 10, 2, want)
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		later := time.Now().Add(time.Hour)
		failing := &balances{name: "balances", failAt: head - 1}
		r := newRunner(t, s, eventsource.RunnerOptions{Registerer: reg, Now: func() time.Time { return later }}, failing)
		st, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st[0].LagEvents != 10 || st[0].LagSeconds < 3600 {
			t.Errorf("lag before catching up = %+v, want 10 events and an hour", st[0])
		}
		if got := changefeedtest.Sum(t, reg, "eventsource_projection_lag_events"); got != 10 {
			t.Errorf("eventsource_projection_lag_events = %v, want 10", got)
		}
		if err := r.CatchUp(ctx); err == nil || !strings.Contains(err.Error(), "refuses") {
			t.Fatalf("CatchUp over a failing event = %v", err)
		}
		// Batches of 7: the first commits, the second holds the failing
		// event and rolls back whole.
		if got := changefeedtest.Sum(t, reg, "eventsource_projection_lag_events"); got != 3 {
			t.Errorf("lag after the failing batch = %v events, want 3", got)
		}
		if got := readBalances(t, gdb); got["a-0"].Events+got["a-1"].Events != 7 {
			t.Errorf("after the failing batch the tables hold %v, want the first batch's 7 events", got)
		}
		failing.failAt = 0
		if err := r.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readBalances(t, gdb); !maps.Equal(got, want) {
			t.Errorf("projected %v, want %v", got, want)
		}
		for _, m := range []string{"eventsource_projection_lag_events", "eventsource_projection_lag_seconds"} {
			if got := changefeedtest.Sum(t, reg, m); got != 0 {
				t.Errorf("%s = %v once caught up, want 0", m, got)
			}
		}
		if got := changefeedtest.Sum(t, reg, "eventsource_projection_applied_total"); got != 10 {
			t.Errorf("eventsource_projection_applied_total = %v, want 10", got)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := eventsource.NewRunner(s, eventsource.RunnerConfig{}, eventsource.RunnerOptions{Registerer: reg}, failing); err != nil {
			t.Errorf("a runner on the registry after Close: %v; want Close to have unregistered the metrics", err)
		}
		if err := r.Run(ctx); err == nil {
			t.Error("Run after Close succeeded")
		}
	})
}

// TestNewRunnerRefuses checks the projections NewRunner refuses.
func TestNewRunnerRefuses(t *testing.T) {
	s, _ := openStore(t, dbtest.SQLiteDSN(t), nil)
	tests := []struct {
		name string
		ps   []eventsource.Projection
		want string
	}{
		{"bad name", []eventsource.Projection{&balances{name: "a b"}}, `projection name "a b"`},
		{"twice", []eventsource.Projection{&balances{name: "x"}, &balances{name: "x"}}, `projection "x" is given twice`},
		{"bad table", []eventsource.Projection{&badTables{}}, `table "t; DROP" is not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := eventsource.NewRunner(s, eventsource.RunnerConfig{}, eventsource.RunnerOptions{}, tt.ps...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRunner = %v, want %q", err, tt.want)
			}
		})
	}
}

type badTables struct{ balances }

func (badTables) Name() string     { return "bad" }
func (badTables) Tables() []string { return []string{"t; DROP"} }

// TestRunnerLifecycle checks the runner's lifecycle: NewRunner starts
// nothing, Run projects until its context ends and returns nil with its
// goroutine gone, a second Run fails, and Close is safe twice.
func TestRunnerLifecycle(t *testing.T) {
	s, gdb := openStore(t, dbtest.SQLiteDSN(t), nil)
	createBalanceTables(t, gdb)
	g := lifecycletest.Watch("eventsource.(*Runner)")
	r := newRunner(t, s, eventsource.RunnerOptions{}, &balances{name: "balances"})
	g.None(t, "after NewRunner")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	want := map[string]balance{}
	appendDeposits(t, s, 3, 1, want)
	r.Wake()
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		got := readBalances(t, gdb)
		return maps.Equal(got, want), fmt.Sprintf("projected %v, want %v", got, want)
	})
	if len(g.Started()) == 0 {
		t.Fatal("the watch sees no goroutine of the running runner; it would pass vacuously")
	}
	lifecycletest.Stop(t, r, cancel, done, g)
}
