package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// env is one database with the orchestrator's tables, a participant's
// guard table and the participant's effects, on one DSN.
type env struct {
	dsn   string
	gdb   *gorm.DB
	store *GormStore
	guard *Guard
}

// openEnv migrates dsn and opens it; the caller closes gdb.
func openEnv(ctx context.Context, dsn string) (*env, error) {
	if err := db.MigrateUp(ctx, dsn, Migrations(), GuardMigrations()); err != nil {
		return nil, err
	}
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		return nil, err
	}
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if db.DialectOf(gdb) == db.Postgres {
		id = "BIGSERIAL PRIMARY KEY"
	}
	// saga_test_effects is the participant's business table: one row per
	// effect that committed, "do" or "undo", in commit order.
	if err := gdb.Exec(`CREATE TABLE IF NOT EXISTS saga_test_effects (id ` + id + `, idem_key TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL)`).Error; err != nil {
		_ = db.Close(gdb)
		return nil, err
	}
	return &env{dsn: dsn, gdb: gdb, store: NewGormStore(gdb), guard: NewGuard(gdb)}, nil
}

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	e, err := openEnv(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(e.gdb) })
	return e
}

// effects lists the committed effects of the saga's keys, in commit
// order, as "do:step" and "undo:step".
func (e *env) effects(ctx context.Context, sagaID string) ([]string, error) {
	var rows []struct{ Step, Kind string }
	if err := e.gdb.WithContext(ctx).Raw(`SELECT step, kind FROM saga_test_effects WHERE idem_key LIKE ? ORDER BY id`, sagaID+"/%").Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Kind + ":" + r.Step
	}
	return out, nil
}

// stepNames are the test saga's steps, in order.
var stepNames = []string{"reserve", "authorize", "confirm"}

// plan injects faults into the test participant, per step.
type plan struct {
	mu sync.Mutex
	// refuse makes the participant refuse the step for good, before any
	// effect.
	refuse map[string]bool
	// transient makes the step fail that many times after writing its
	// effect, which the rollback undoes.
	transient map[string]int
	// compFail makes the compensation fail that many times; -1 always.
	compFail map[string]int
	// hang holds the step's first attempt until the channel is closed; it
	// then reaches the participant late, and its outcome goes to late.
	hang map[string]chan struct{}
	late chan error
}

func newPlan() *plan {
	return &plan{refuse: map[string]bool{}, transient: map[string]int{}, compFail: map[string]int{},
		hang: map[string]chan struct{}{}, late: make(chan error, 8)}
}

// take reports whether the counter of step in m is still positive, and
// counts it down; -1 never runs out.
func (p *plan) take(m map[string]int, step string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch n := m[step]; {
	case n < 0:
		return true
	case n > 0:
		m[step] = n - 1
		return true
	}
	return false
}

func (p *plan) set(f func(p *plan)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// participant is the test's saga participant: effects under the guard.
type participant struct {
	env  *env
	plan *plan
	// committed, if set, is called after the participant committed a step
	// ("do") or a compensation ("undo"), before the orchestrator hears of it.
	committed func(kind, step string)
}

var errTransient = errors.New("participant unavailable")

func (p *participant) effect(ctx context.Context, key, step, kind string) error {
	return db.Conn(ctx, p.env.gdb).Exec(`INSERT INTO saga_test_effects (idem_key, step, kind) VALUES (?, ?, ?)`, key, step, kind).Error
}

func (p *participant) apply(ctx context.Context, x *Exec) (Outcome, error) {
	return p.env.guard.Do(ctx, x.Key, func(ctx context.Context) ([]byte, error) {
		var data map[string]string
		if err := x.Decode(&data); err != nil {
			return nil, err
		}
		p.plan.mu.Lock()
		refuse := p.plan.refuse[x.Step] || (x.Step == "confirm" && data["fail"] == "yes")
		p.plan.mu.Unlock()
		if refuse {
			return nil, Permanent(fmt.Errorf("participant refuses %s", x.Step))
		}
		if err := p.effect(ctx, x.Key, x.Step, "do"); err != nil {
			return nil, err
		}
		if p.plan.take(p.plan.transient, x.Step) {
			return nil, errTransient
		}
		return []byte("res-" + x.Key), nil
	})
}

func (p *participant) do(ctx context.Context, x *Exec) error {
	p.plan.mu.Lock()
	hang := p.plan.hang[x.Step]
	delete(p.plan.hang, x.Step)
	p.plan.mu.Unlock()
	if hang != nil {
		// The request is held in the network past the orchestrator's
		// timeout; it reaches the participant with a context of its own.
		<-hang
		_, err := p.apply(context.Background(), x)
		p.plan.late <- err
		return err
	}
	out, err := p.apply(ctx, x)
	if err != nil {
		return err
	}
	if p.committed != nil {
		p.committed("do", x.Step)
	}
	var data map[string]string
	if err := x.Decode(&data); err != nil {
		return err
	}
	data[x.Step] = string(out.Result)
	return x.Update(data)
}

func (p *participant) undo(ctx context.Context, x *Exec) error {
	if p.plan.take(p.plan.compFail, x.Step) {
		return errTransient
	}
	err := p.env.guard.Compensate(ctx, x.Key, func(ctx context.Context, result []byte) error {
		if want := "res-" + x.Key; string(result) != want {
			return fmt.Errorf("compensation of %s got result %q, want %q", x.Key, result, want)
		}
		return p.effect(ctx, x.Key, x.Step, "undo")
	})
	if err == nil && p.committed != nil {
		p.committed("undo", x.Step)
	}
	return err
}

// definition is the test saga: three steps on the participant.
func (p *participant) definition(name string, retry Retry, timeout time.Duration) *Definition {
	d := &Definition{Name: name}
	for _, s := range stepNames {
		d.Steps = append(d.Steps, Step{Name: s, Do: p.do, Compensate: p.undo, Retry: retry, Timeout: timeout})
	}
	return d
}

// withCompensateRetry gives every step of d the compensation policy r.
func withCompensateRetry(d *Definition, r Retry) *Definition {
	for i := range d.Steps {
		d.Steps[i].CompensateRetry = r
	}
	return d
}

// fastRetry keeps the tests quick: three attempts, 1 ms apart.
var fastRetry = Retry{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// running starts o.Run and stops it when the test ends.
func running(t *testing.T, o *Orchestrator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func newOrchestrator(t *testing.T, e *env, reg prometheus.Registerer, defs ...*Definition) *Orchestrator {
	t.Helper()
	o, err := New(Config{Store: e.store, Definitions: defs, Metrics: reg, Rescan: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// wait waits for the saga's end, for at most a minute.
func wait(t *testing.T, o *Orchestrator, id string) *Saga {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := o.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trail renders the step events of a saga's log as "event:step", and the
// state changes as "state", to compare with a table's expectation.
func trail(log []Entry) []string {
	out := make([]string, 0, len(log))
	for _, e := range log {
		if e.Event == EventState {
			out = append(out, string(e.State))
			continue
		}
		out = append(out, string(e.Event)+":"+e.Step)
	}
	return out
}

func join(s []string) string { return strings.Join(s, " ") }

// countingStore counts the writes of the saga log.
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

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// checkStarts has each Do and Compensate of def first read the saga's log
// from the store and look for its own attempt's start as the last entry;
// the function it returns lists the attempts that did not find it.
func checkStarts(e *env, def *Definition) func() []string {
	var (
		mu     sync.Mutex
		unseen []string
	)
	for j := range def.Steps {
		st := &def.Steps[j]
		for _, f := range []struct {
			fn *func(context.Context, *Exec) error
			ev Event
		}{{&st.Do, StepStarted}, {&st.Compensate, StepCompensating}} {
			inner, ev := *f.fn, f.ev
			*f.fn = func(ctx context.Context, x *Exec) error {
				s, err := e.store.Get(ctx, x.SagaID, true)
				if err != nil {
					return err
				}
				if last := s.Log[len(s.Log)-1]; last.Step != x.Step || last.Event != ev || last.Attempt != x.Attempt {
					mu.Lock()
					unseen = append(unseen, fmt.Sprintf("%s:%s attempt %d (the log ends with %+v)", ev, x.Step, x.Attempt, last))
					mu.Unlock()
				}
				return inner(ctx, x)
			}
		}
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(unseen)
	}
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
