package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/internal/lifecycle"
)

// Config configures an Orchestrator.
type Config struct {
	// Store persists the sagas; it is required.
	Store Store
	// Definitions are the kinds of saga the orchestrator runs; at least
	// one, with unique names.
	Definitions []*Definition
	// Logger receives what goes wrong. If nil, slog.Default().
	Logger *slog.Logger
	// Metrics gets the orchestrator's metrics. If nil, they are not
	// registered.
	Metrics prometheus.Registerer
	// Workers caps the sagas that execute at once. If zero, 16.
	Workers int
	// Rescan is how often Run looks for unfinished sagas that no worker
	// executes, such as one whose store write failed. If zero, 10 s.
	Rescan time.Duration
	// Now stamps sagas and their log. If nil, time.Now.
	Now func() time.Time
}

// Orchestrator runs sagas: Start persists one and has it executed; Run
// executes them, and on start resumes every unfinished saga from its log.
// It assumes that it is the only orchestrator executing the sagas of its
// store; a second one on the same store is kept from corrupting a saga
// by Save's version check, but may repeat a step attempt (which the
// participants' guards absorb).
type Orchestrator struct {
	store   Store
	defs    map[string]*Definition
	log     *slog.Logger
	workers chan struct{}
	rescan  time.Duration
	now     func() time.Time
	metrics *metrics
	reg     prometheus.Registerer
	guard   lifecycle.Guard

	mu      sync.Mutex
	runCtx  context.Context // set while Run runs
	active  map[string]bool
	waiters map[string][]chan struct{}
	wg      sync.WaitGroup

	// afterPersist, if set, is called after each write of the saga log;
	// the crash tests kill the process there.
	afterPersist func(s *Saga, entries []Entry)
}

// ErrUnknownDefinition is returned by Start for a definition name the
// orchestrator was not given.
var ErrUnknownDefinition = errors.New("unknown saga definition")

// StateError is returned for an operation that the saga's state does not
// allow, such as Retry of a saga that is not manual.
type StateError struct {
	ID    string
	State State
	Op    string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("saga %s is %s: only a manual saga can be %s", e.ID, e.State, e.Op)
}

// New checks cfg and builds the orchestrator; it starts nothing.
func New(cfg Config) (*Orchestrator, error) {
	if cfg.Store == nil {
		return nil, errors.New("saga orchestrator needs a store")
	}
	if len(cfg.Definitions) == 0 {
		return nil, errors.New("saga orchestrator needs at least one definition")
	}
	o := &Orchestrator{store: cfg.Store, defs: map[string]*Definition{}, log: cfg.Logger, rescan: cfg.Rescan, now: cfg.Now,
		active: map[string]bool{}, waiters: map[string][]chan struct{}{}, reg: cfg.Metrics}
	for _, d := range cfg.Definitions {
		if d == nil {
			return nil, errors.New("saga orchestrator: nil definition")
		}
		if err := d.validate(); err != nil {
			return nil, err
		}
		if o.defs[d.Name] != nil {
			return nil, fmt.Errorf("saga definition %q is given twice", d.Name)
		}
		o.defs[d.Name] = d
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.rescan <= 0 {
		o.rescan = 10 * time.Second
	}
	if o.now == nil {
		o.now = time.Now
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = 16
	}
	o.workers = make(chan struct{}, workers)
	o.metrics = newMetrics(cfg.Store)
	if o.reg != nil {
		if err := o.metrics.register(o.reg); err != nil {
			return nil, fmt.Errorf("saga orchestrator metrics: %w", err)
		}
	}
	return o, nil
}

// Run executes sagas until ctx ends: first every unfinished one in the
// store, by its log, then each that Start persists, and every Rescan the
// unfinished ones no worker has. When ctx ends it waits for the step
// attempts in flight to return; what they leave unfinished is resumed by
// the next Run.
func (o *Orchestrator) Run(ctx context.Context) error {
	if err := o.guard.Run("saga orchestrator"); err != nil {
		return err
	}
	o.mu.Lock()
	o.runCtx = ctx
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.runCtx = nil
		o.mu.Unlock()
		o.wg.Wait()
	}()
	t := time.NewTicker(o.rescan)
	defer t.Stop()
	for {
		if ids, err := o.store.Unfinished(ctx); err != nil {
			if ctx.Err() == nil {
				o.log.Warn("saga orchestrator: list unfinished sagas", "err", err)
			}
		} else {
			for _, id := range ids {
				o.dispatch(id)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close releases the orchestrator's metrics. Call it after Run returned.
func (o *Orchestrator) Close() error {
	return o.guard.Close(func() error {
		if o.reg != nil {
			o.metrics.unregister(o.reg)
		}
		return nil
	})
}

// Start persists a new saga of the named definition with data (marshalled
// to JSON) in state running, and has Run execute it. Start is idempotent
// on id: for an existing saga of the same definition it returns that saga
// as it stands. It returns once the saga is persisted; Wait waits for its
// end.
func (o *Orchestrator) Start(ctx context.Context, name, id string, data any) (*Saga, error) {
	if o.defs[name] == nil {
		return nil, fmt.Errorf("start saga %s: %w %q", id, ErrUnknownDefinition, name)
	}
	if id == "" {
		return nil, fmt.Errorf("start saga of %s: the id is empty", name)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("start saga %s: encode data: %w", id, err)
	}
	now := o.now().UTC()
	s := &Saga{ID: id, Name: name, State: Running, Data: raw, CreatedAt: now, UpdatedAt: now}
	entries := []Entry{{Event: EventState, State: Running, At: now}}
	// When Run runs, the creation also logs the start of the first step's
	// first attempt, which the worker then makes without a write of its
	// own: the log still holds the start before the attempt.
	o.mu.Lock()
	running := o.runCtx != nil && o.runCtx.Err() == nil
	o.mu.Unlock()
	if running {
		entries = append(entries, Entry{Step: o.defs[name].Steps[0].Name, Event: StepStarted, Attempt: 1, At: now})
	}
	created, err := o.store.Create(ctx, s, entries...)
	if err != nil {
		return nil, err
	}
	var fresh *execution
	if !created {
		got, err := o.store.Get(ctx, id, false)
		if err != nil {
			return nil, err
		}
		if got.Name != name {
			return nil, fmt.Errorf("start saga %s of %s: it exists as a saga of %s", id, name, got.Name)
		}
		s = got
	} else {
		o.metrics.transition(name, Running)
		o.persisted(s, entries)
		c := *s
		c.Data = slices.Clone(s.Data)
		fresh = &execution{s: &c, startLogged: running}
	}
	if !s.State.Final() {
		o.dispatchSaga(id, fresh)
	}
	return s, nil
}

// Wait waits until the saga is completed, compensated, manual or aborted,
// and returns it with its log, or returns ctx's error. Only the sagas this
// orchestrator executes wake it.
func (o *Orchestrator) Wait(ctx context.Context, id string) (*Saga, error) {
	for {
		ch := make(chan struct{})
		o.mu.Lock()
		o.waiters[id] = append(o.waiters[id], ch)
		// A saga that a worker of this orchestrator has is not final
		// before that worker lets it go, which wakes ch: the store need
		// not be read until then.
		executing := o.active[id]
		o.mu.Unlock()
		if !executing {
			s, err := o.store.Get(ctx, id, true)
			if err == nil && s.State.Final() {
				o.dropWaiter(id, ch)
				return s, nil
			}
			if err != nil && errors.Is(err, ErrNotFound) {
				o.dropWaiter(id, ch)
				return nil, err
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			o.dropWaiter(id, ch)
			return nil, fmt.Errorf("wait for saga %s: %w", id, ctx.Err())
		}
	}
}

func (o *Orchestrator) dropWaiter(id string, ch chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waiters[id] = slices.DeleteFunc(o.waiters[id], func(c chan struct{}) bool { return c == ch })
	if len(o.waiters[id]) == 0 {
		delete(o.waiters, id)
	}
}

// wake tells the waiters of id that it may have ended.
func (o *Orchestrator) wake(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ch := range o.waiters[id] {
		close(ch)
	}
	delete(o.waiters, id)
}

// Get returns the saga with its log.
func (o *Orchestrator) Get(ctx context.Context, id string) (*Saga, error) {
	return o.store.Get(ctx, id, true)
}

// List returns a page of sagas, newest first.
func (o *Orchestrator) List(ctx context.Context, f Filter) ([]Saga, error) {
	return o.store.List(ctx, f)
}

// Retry resumes the compensation of a manual saga, from the step whose
// compensation failed, with that step's full retry policy again.
func (o *Orchestrator) Retry(ctx context.Context, id, reason string) (*Saga, error) {
	s, err := o.operate(ctx, id, "retried", Compensating, reason)
	if err != nil {
		return nil, err
	}
	o.dispatch(id)
	return s, nil
}

// Abort gives up on a manual saga: it becomes aborted, a final state, and
// the orchestrator compensates nothing more. The steps that were not
// compensated (StepIndex and below) keep their effects at the
// participants: abort is the operator's statement that they will put those
// right by hand, or that they need no undoing.
func (o *Orchestrator) Abort(ctx context.Context, id, reason string) (*Saga, error) {
	s, err := o.operate(ctx, id, "aborted", Aborted, reason)
	if err != nil {
		return nil, err
	}
	o.wake(id)
	return s, nil
}

// operate moves a manual saga to state for an operator.
func (o *Orchestrator) operate(ctx context.Context, id, op string, to State, reason string) (*Saga, error) {
	s, err := o.store.Get(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if s.State != Manual {
		return nil, &StateError{ID: id, State: s.State, Op: op}
	}
	if reason == "" {
		reason = op + " by an operator"
	}
	s.State = to
	if to == Compensating {
		s.Error = ""
	}
	if err := o.save(ctx, s, Entry{Event: EventState, State: to, Error: reason}); err != nil {
		return nil, err
	}
	return o.store.Get(ctx, id, true)
}

// dispatch has a worker execute the saga, unless Run is not running or a
// worker has it already.
func (o *Orchestrator) dispatch(id string) { o.dispatchSaga(id, nil) }

// dispatchSaga is dispatch of a saga that fresh, when not nil, holds as
// Start just persisted it, so that the worker need not read it back.
func (o *Orchestrator) dispatchSaga(id string, fresh *execution) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctx := o.runCtx
	if ctx == nil || ctx.Err() != nil || o.active[id] {
		return
	}
	o.active[id] = true
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer func() {
			o.mu.Lock()
			delete(o.active, id)
			o.mu.Unlock()
			o.wake(id)
		}()
		select {
		case o.workers <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-o.workers }()
		if err := o.execute(ctx, id, fresh); err != nil && ctx.Err() == nil {
			o.log.Warn("saga execution stopped; it is resumed later", "saga", id, "err", err)
		}
	}()
}

// save writes s with entries and stamps them.
func (o *Orchestrator) save(ctx context.Context, s *Saga, entries ...Entry) error {
	now := o.now().UTC()
	s.UpdatedAt = now
	for i := range entries {
		entries[i].At = now
	}
	if err := o.store.Save(ctx, s, entries...); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Event == EventState {
			o.metrics.transition(s.Name, e.State)
		}
	}
	o.persisted(s, entries)
	return nil
}

func (o *Orchestrator) persisted(s *Saga, entries []Entry) {
	if o.afterPersist != nil {
		o.afterPersist(s, entries)
	}
}

// execution is a worker's hold on one saga: the saga as it stands in
// memory, ahead of the store by the entries not written yet.
type execution struct {
	def *Definition
	s   *Saga
	// pending are the log entries, and the changes of s, that the next
	// write persists. Entries that need not be in the log before the
	// orchestrator acts (a step's success, a compensation with nothing to
	// undo) wait here for the write that must precede the next action, the
	// next attempt's start, so that a step costs one write of the log in
	// place of two; a final state and a failure are written at once.
	pending []Entry
	// startLogged reports that the log holds the start of attempt 1 of
	// the step at StepIndex already, written with the saga's creation.
	startLogged bool
}

// note adds entries to what the next flush writes.
func (x *execution) note(entries ...Entry) { x.pending = append(x.pending, entries...) }

// flush writes the saga with the pending entries, if any.
func (o *Orchestrator) flush(ctx context.Context, x *execution) error {
	if len(x.pending) == 0 {
		return nil
	}
	entries := x.pending
	x.pending = nil
	return o.save(ctx, x.s, entries...)
}

// execute takes the saga from where the store has it (or fresh, as Start
// persisted it) to a final state, or returns the error that stopped it
// (the store failed, ctx ended).
func (o *Orchestrator) execute(ctx context.Context, id string, fresh *execution) error {
	x := fresh
	if x == nil {
		s, err := o.store.Get(ctx, id, false)
		if err != nil {
			return err
		}
		x = &execution{s: s}
	}
	x.def = o.defs[x.s.Name]
	if x.def == nil {
		return fmt.Errorf("saga %s: %w %q", id, ErrUnknownDefinition, x.s.Name)
	}
	for !x.s.State.Final() {
		var err error
		switch x.s.State {
		case Running:
			err = o.forward(ctx, x)
		case Compensating:
			err = o.backward(ctx, x)
		}
		if err != nil {
			return err
		}
	}
	return o.flush(ctx, x)
}

// forward runs the saga's steps from StepIndex on. A step that fails for
// good turns the saga to compensating, from that step down.
func (o *Orchestrator) forward(ctx context.Context, x *execution) error {
	def, s := x.def, x.s
	for s.StepIndex < len(def.Steps) {
		st := &def.Steps[s.StepIndex]
		data, attempt, stepErr, err := o.attempts(ctx, x, st, false)
		if err != nil {
			return err
		}
		if stepErr != nil {
			// StepIndex stays on the failed step: its Do may have taken
			// effect (a timeout, a lost answer), so it is compensated too.
			// The state change goes with the compensation's first write.
			s.State = Compensating
			s.Error = fmt.Sprintf("step %s: %v", st.Name, stepErr)
			x.note(Entry{Event: EventState, State: Compensating, Error: s.Error})
			return nil
		}
		s.StepIndex++
		s.Data = data
		x.note(Entry{Step: st.Name, Event: StepSucceeded, Attempt: attempt})
	}
	s.State = Completed
	x.note(Entry{Event: EventState, State: Completed})
	return o.flush(ctx, x)
}

// backward compensates the saga's steps from StepIndex down to the first.
// A compensation that fails for good parks the saga in manual.
func (o *Orchestrator) backward(ctx context.Context, x *execution) error {
	def, s := x.def, x.s
	if s.StepIndex >= len(def.Steps) {
		s.StepIndex = len(def.Steps) - 1
	}
	for s.StepIndex >= 0 {
		st := &def.Steps[s.StepIndex]
		attempt := 0
		if st.Compensate != nil {
			var stepErr, err error
			_, attempt, stepErr, err = o.attempts(ctx, x, st, true)
			if err != nil {
				return err
			}
			if stepErr != nil {
				s.State = Manual
				s.Error = fmt.Sprintf("compensate step %s: %v", st.Name, stepErr)
				x.note(Entry{Event: EventState, State: Manual, Error: s.Error})
				return o.flush(ctx, x)
			}
		}
		s.StepIndex--
		x.note(Entry{Step: st.Name, Event: StepCompensated, Attempt: attempt})
	}
	s.State = Compensated
	x.note(Entry{Event: EventState, State: Compensated})
	return o.flush(ctx, x)
}

// attempts calls the step's Do (or Compensate) under its retry policy,
// logging each attempt before it (with the entries pending) and each
// failure after it. It returns the data the successful attempt left and
// its number; or the step's last error; or err when the log could not be
// written or ctx ended.
func (o *Orchestrator) attempts(ctx context.Context, x *execution, st *Step, compensate bool) (data json.RawMessage, attempt int, stepErr, err error) {
	def, s := x.def, x.s
	policy := st.Retry
	if compensate && st.CompensateRetry != (Retry{}) {
		policy = st.CompensateRetry
	}
	policy = policy.withDefaults()
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	startEv, failEv, fn, phase := StepStarted, StepFailed, st.Do, "do"
	if compensate {
		startEv, failEv, fn, phase = StepCompensating, StepCompensationFailed, st.Compensate, "compensate"
	}
	for attempt = 1; ; attempt++ {
		if attempt == 1 && x.startLogged && !compensate {
			x.startLogged = false
		} else {
			x.note(Entry{Step: st.Name, Event: startEv, Attempt: attempt})
		}
		if err := o.flush(ctx, x); err != nil {
			return nil, 0, nil, err
		}
		ex := &Exec{SagaID: s.ID, Saga: def.Name, Step: st.Name, Key: Key(s.ID, st.Name), Attempt: attempt, data: slices.Clone(s.Data)}
		began := time.Now()
		stepErr = call(ctx, timeout, fn, ex)
		o.metrics.observe(def.Name, st.Name, phase, stepErr, time.Since(began))
		if ctx.Err() != nil {
			return nil, 0, nil, ctx.Err()
		}
		if stepErr == nil {
			return ex.data, attempt, nil, nil
		}
		x.note(Entry{Step: st.Name, Event: failEv, Attempt: attempt, Error: stepErr.Error()})
		if err := o.flush(ctx, x); err != nil {
			return nil, 0, nil, err
		}
		if IsPermanent(stepErr) || attempt >= policy.MaxAttempts {
			return nil, attempt, stepErr, nil
		}
		o.metrics.retry(def.Name, st.Name, phase)
		t := time.NewTimer(policy.wait(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// ErrTimeout is the error of a step attempt that did not return within
// the step's Timeout.
var ErrTimeout = errors.New("saga step timed out")

// call runs fn under timeout. An fn that does not return in time is left
// to finish on its own (its effect, if any, is what the participant's
// guard refuses once the step is compensated), and the attempt fails.
func call(ctx context.Context, timeout time.Duration, fn func(context.Context, *Exec) error, x *Exec) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("saga step %s panicked: %v", x.Step, r)
			}
		}()
		done <- fn(tctx, x)
	}()
	select {
	case err := <-done:
		if err != nil && tctx.Err() != nil && ctx.Err() == nil && !IsPermanent(err) {
			return fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
		}
		return err
	case <-tctx.Done():
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w after %s", ErrTimeout, timeout)
	}
}
