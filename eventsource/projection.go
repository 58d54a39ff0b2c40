package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/internal/lifecycle"
)

// Projection is a read model built from the store's events (CQRS): tables
// of its own that Apply keeps up to date, one event at a time, in the
// transaction that also moves its checkpoint, so that each event changes
// them exactly once.
type Projection interface {
	// Name identifies the projection and its checkpoint, such as
	// "orders.by_id".
	Name() string
	// Tables are the projection's own tables, emptied by Rebuild.
	Tables() []string
	// Apply applies ev in tx. It skips the events it does not need; an
	// error rolls the batch back, and the runner tries again later.
	Apply(ctx context.Context, tx *gorm.DB, ev Event) error
}

// RunnerConfig tunes a Runner. The zero value is usable.
type RunnerConfig struct {
	// Batch is how many events one transaction applies. If zero, 256.
	Batch int
	// PollInterval is how often Run looks for new events when nothing
	// wakes it (Wake). If zero, 100ms.
	PollInterval time.Duration
	// RetryInterval is how long Run waits after a failed batch. If zero,
	// 1s.
	RetryInterval time.Duration
}

// RunnerOptions are what a Runner needs besides its config.
type RunnerOptions struct {
	// Registerer receives the runner's metrics. If nil, they are kept but
	// not registered.
	Registerer prometheus.Registerer
	// Logger receives failed batches. If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock of the lag in seconds. If nil, time.Now.
	Now func() time.Time
}

// Runner keeps projections in step with a store: each reads the events
// after its checkpoint and applies them with the checkpoint's update in
// one transaction.
//
// It exports, per projection (label "projection"):
// eventsource_projection_lag_events (the store's head position minus the
// checkpoint), eventsource_projection_lag_seconds (how long ago the oldest
// event not yet applied happened, 0 when caught up),
// eventsource_projection_position and eventsource_projection_applied_total.
type Runner struct {
	store       *SQLStore
	cfg         RunnerConfig
	opt         RunnerOptions
	projections []Projection
	byName      map[string]Projection
	wake        chan struct{}
	life        lifecycle.Guard

	lagEvents, lagSeconds, position *prometheus.GaugeVec
	applied                         *prometheus.CounterVec
	collectors                      []prometheus.Collector
}

var projectionName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)
var tableIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// NewRunner builds a runner of projections on store. It checks their names
// and tables, registers its metrics, and starts nothing.
func NewRunner(store *SQLStore, cfg RunnerConfig, opt RunnerOptions, projections ...Projection) (*Runner, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("no store"))
	}
	byName := map[string]Projection{}
	for _, p := range projections {
		name := p.Name()
		if !projectionName.MatchString(name) {
			errs = append(errs, fmt.Errorf("projection name %q must be 1 to 200 of a-z, A-Z, 0-9, '.', '_' or '-'", name))
		}
		if _, dup := byName[name]; dup {
			errs = append(errs, fmt.Errorf("projection %q is given twice", name))
		}
		for _, t := range p.Tables() {
			if !tableIdent.MatchString(t) {
				errs = append(errs, fmt.Errorf("projection %q: table %q is not a plain lower-case identifier", name, t))
			}
		}
		byName[name] = p
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("eventsource: projections: %w", errors.Join(errs...))
	}
	r := &Runner{store: store, cfg: cfg, opt: opt, projections: projections, byName: byName, wake: make(chan struct{}, 1),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventsource_projection_lag_events",
			Help: "Events in the store that the projection has not applied yet: the head position minus its checkpoint."}, []string{"projection"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventsource_projection_lag_seconds",
			Help: "How long ago the oldest event that the projection has not applied happened; 0 when it is caught up."}, []string{"projection"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eventsource_projection_position",
			Help: "The projection's checkpoint: the position of the last event applied."}, []string{"projection"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventsource_projection_applied_total",
			Help: "Events applied to the projection's tables."}, []string{"projection"}),
	}
	r.collectors = []prometheus.Collector{r.lagEvents, r.lagSeconds, r.position, r.applied}
	if opt.Registerer != nil {
		for i, c := range r.collectors {
			if err := opt.Registerer.Register(c); err != nil {
				for _, done := range r.collectors[:i] {
					opt.Registerer.Unregister(done)
				}
				return nil, fmt.Errorf("eventsource: projection metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Projections are the runner's projections, in the order given.
func (r *Runner) Projections() []Projection { return r.projections }

// Wake makes Run look for new events now, as after an append.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run applies new events to every projection until ctx ends, then returns
// nil. A failed batch is logged and tried again after RetryInterval.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.life.Run("projection runner"); err != nil {
		return err
	}
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	for {
		wait := r.cfg.PollInterval
		if err := r.CatchUp(ctx); err != nil && ctx.Err() == nil {
			r.opt.Logger.Warn("projection runner: catching up failed; trying again", "err", err, "retry_in", r.cfg.RetryInterval)
			wait = r.cfg.RetryInterval
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-r.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Close unregisters the runner's metrics. It is safe to call twice.
func (r *Runner) Close() error {
	return r.life.Close(func() error {
		if r.opt.Registerer != nil {
			for _, c := range r.collectors {
				r.opt.Registerer.Unregister(c)
			}
		}
		return nil
	})
}

// CatchUp applies, to every projection, the events up to the store's head
// as it was when each started, and updates the lag metrics.
func (r *Runner) CatchUp(ctx context.Context) error {
	var errs []error
	for _, p := range r.projections {
		if err := r.catchUp(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) catchUp(ctx context.Context, p Projection) error {
	head, err := r.store.Head(ctx)
	if err != nil {
		return err
	}
	for {
		pos, n, err := r.batch(ctx, p)
		if err != nil {
			// The metrics still show the lag that the failure leaves.
			_, _ = r.status(ctx, p.Name())
			return err
		}
		if n == 0 || pos >= head {
			_, err := r.status(ctx, p.Name())
			return err
		}
	}
}

// batch applies up to Batch events after p's checkpoint, in one
// transaction with the checkpoint's update, and returns the new checkpoint
// and how many it applied. On Postgres the checkpoint's row lock keeps two
// runners of one projection from applying the same events; on SQLite the
// write lock does.
func (r *Runner) batch(ctx context.Context, p Projection) (int64, int, error) {
	name := p.Name()
	var (
		pos int64
		n   int
	)
	err := db.Transact(ctx, r.store.DB(), func(ctx context.Context) error {
		tx := db.Conn(ctx, r.store.DB())
		var err error
		if pos, err = r.lockCheckpoint(tx, name); err != nil {
			return err
		}
		events, err := r.store.ReadAll(ctx, pos, r.cfg.Batch)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if err := p.Apply(ctx, tx, ev); err != nil {
				return fmt.Errorf("eventsource: projection %s: apply %s %s/%s v%d at position %d: %w", name, ev.Type, ev.AggregateType, ev.AggregateID, ev.Version, ev.Position, err)
			}
		}
		if len(events) == 0 {
			return nil
		}
		n, pos = len(events), events[len(events)-1].Position
		return r.setCheckpoint(tx, name, pos)
	})
	if err != nil {
		return 0, 0, err
	}
	if n > 0 {
		r.applied.WithLabelValues(name).Add(float64(n))
	}
	return pos, n, nil
}

// lockCheckpoint creates name's checkpoint if it is new and returns its
// position, locked until the transaction ends.
func (r *Runner) lockCheckpoint(tx *gorm.DB, name string) (int64, error) {
	if err := tx.Exec("INSERT INTO es_checkpoints (name, position, updated_at) VALUES (?, 0, ?) ON CONFLICT (name) DO NOTHING", name, r.opt.Now().UTC()).Error; err != nil {
		return 0, fmt.Errorf("eventsource: projection %s: create checkpoint: %w", name, err)
	}
	q := "SELECT position FROM es_checkpoints WHERE name = ?"
	if r.store.dialect == db.Postgres {
		q += " FOR UPDATE"
	}
	var pos int64
	if err := tx.Raw(q, name).Scan(&pos).Error; err != nil {
		return 0, fmt.Errorf("eventsource: projection %s: read checkpoint: %w", name, err)
	}
	return pos, nil
}

func (r *Runner) setCheckpoint(tx *gorm.DB, name string, pos int64) error {
	if err := tx.Exec("UPDATE es_checkpoints SET position = ?, updated_at = ? WHERE name = ?", pos, r.opt.Now().UTC(), name).Error; err != nil {
		return fmt.Errorf("eventsource: projection %s: move checkpoint to %d: %w", name, pos, err)
	}
	return nil
}

// Status is where one projection stands.
type Status struct {
	Name string `json:"name"`
	// Position is the projection's checkpoint; Head the store's.
	Position int64 `json:"position"`
	Head     int64 `json:"head"`
	// LagEvents is Head − Position; LagSeconds how long ago the oldest
	// event not applied happened.
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
}

// Status reports every projection's checkpoint and lag, and sets the lag
// metrics to it.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	out := make([]Status, 0, len(r.projections))
	for _, p := range r.projections {
		st, err := r.status(ctx, p.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (r *Runner) status(ctx context.Context, name string) (Status, error) {
	head, err := r.store.Head(ctx)
	if err != nil {
		return Status{}, err
	}
	var rows []struct {
		Position int64 `gorm:"column:position"`
	}
	if err := db.Conn(ctx, r.store.DB()).Raw("SELECT position FROM es_checkpoints WHERE name = ?", name).Scan(&rows).Error; err != nil {
		return Status{}, fmt.Errorf("eventsource: projection %s: read checkpoint: %w", name, err)
	}
	st := Status{Name: name, Head: head}
	if len(rows) > 0 {
		st.Position = rows[0].Position
	}
	st.LagEvents = max(head-st.Position, 0)
	if st.LagEvents > 0 {
		at, ok, err := r.store.firstAfter(ctx, st.Position)
		if err != nil {
			return Status{}, err
		}
		if ok {
			st.LagSeconds = max(r.opt.Now().Sub(at).Seconds(), 0)
		}
	}
	r.lagEvents.WithLabelValues(name).Set(float64(st.LagEvents))
	r.lagSeconds.WithLabelValues(name).Set(st.LagSeconds)
	r.position.WithLabelValues(name).Set(float64(st.Position))
	return st, nil
}

// ErrUnknownProjection is returned by Rebuild for a name the runner does
// not run.
var ErrUnknownProjection = errors.New("eventsource: unknown projection")

// Rebuild empties the projection's tables and sets its checkpoint to 0 in
// one transaction, then applies every event from position 0, so that the
// tables end as a fresh projection of the whole store would have them.
// Readers see the tables fill up again while it runs. A Run of the same
// projection at the same time is safe: each batch locks the checkpoint.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	p, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownProjection, name)
	}
	err := db.Transact(ctx, r.store.DB(), func(ctx context.Context) error {
		tx := db.Conn(ctx, r.store.DB())
		if _, err := r.lockCheckpoint(tx, name); err != nil {
			return err
		}
		for _, t := range p.Tables() {
			if err := tx.Exec("DELETE FROM " + t).Error; err != nil {
				return fmt.Errorf("eventsource: rebuild %s: empty %s: %w", name, t, err)
			}
		}
		return r.setCheckpoint(tx, name, 0)
	})
	if err != nil {
		return err
	}
	return r.catchUp(ctx, p)
}
