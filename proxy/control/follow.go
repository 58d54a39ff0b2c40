package control

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A replica of a shared store follows it: every store's Changed wakes
// WatchStore, which loads the newest state and serves it, and a poll every
// PollInterval, since a wake-up can be lost (Postgres does not replay a
// notification to a listener that was away), reads the stored revision
// (RevisionReader) and loads only when it is newer. The poll is the only
// one: the store runs none of its own. Each read also feeds the staleness
// that Status and the metrics report.

// storeTimeout bounds one read or save of the store.
const storeTimeout = 5 * time.Second

// maxConflictRetries bounds how often a change without If-Match that lost
// a race to another replica is redone on the newer state.
const maxConflictRetries = 10

// ErrNoTable is a change asked of a replica that has no table yet, since
// it has not read the shared store: the admin API answers 503.
var ErrNoTable = errors.New("no route table yet: the control store has not been read")

// InvalidStateError is a stored state that a replica refuses to serve:
// it has no table, or its table does not compile.
type InvalidStateError struct {
	Revision int64
	Err      error
}

func (e *InvalidStateError) Error() string {
	return fmt.Sprintf("stored control state at revision %d refused: %v", e.Revision, e.Err)
}

func (e *InvalidStateError) Unwrap() error { return e.Err }

// followState is how fresh a plane's view of its store is, and the
// metrics that say so.
type followState struct {
	shared  bool
	born    time.Time
	mu      sync.Mutex
	last    time.Time // the last successful read or save
	lastErr error     // the last failure, nil after a success
	log     func(msg string, args ...any)
	info    func(msg string, args ...any)

	revision prometheus.Gauge
	errs     prometheus.Counter
	refused  prometheus.Counter
	invalid  prometheus.Gauge
}

func (f *followState) init(p *Plane, reg prometheus.Registerer) {
	f.shared, f.born, f.log, f.info = p.shared, time.Now(), p.log.Warn, p.log.Info
	f.revision = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strangler_proxy_control_revision",
		Help: "The control store's revision this proxy serves.",
	})
	f.errs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strangler_proxy_control_store_errors_total",
		Help: "Reads and saves of the control store that failed.",
	})
	f.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strangler_proxy_control_refused_total",
		Help: "Stored control states refused because their table is empty or invalid.",
	})
	f.invalid = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strangler_proxy_control_invalid",
		Help: "1 while the newest stored state is refused and the previous table keeps serving.",
	})
	staleness := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strangler_proxy_control_staleness_seconds",
		Help: "Seconds since this proxy last read or saved its shared control store; 0 with the embedded store.",
	}, func() float64 { return f.staleness().Seconds() })
	reg.MustRegister(f.revision, f.errs, f.refused, f.invalid, staleness)
}

// read records the outcome of a read or save of the store, and logs the
// store's loss and return once each.
func (f *followState) read(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.errs.Inc()
		if f.lastErr == nil && f.shared {
			f.log("control store unreachable: the proxy keeps serving its last good table", "error", err)
		}
		f.lastErr = err
		return
	}
	if f.lastErr != nil && f.shared {
		f.info("control store reachable again")
	}
	f.last, f.lastErr = time.Now(), nil
}

// staleness is the time since the last successful read or save, since
// start if there was none; zero for a store with one writer.
func (f *followState) staleness() time.Duration {
	if !f.shared {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last.IsZero() {
		return time.Since(f.born)
	}
	return time.Since(f.last)
}

func (f *followState) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// Status is what a proxy's control plane serves and how fresh it is, for
// /readyz and an operator's list of replicas.
type Status struct {
	// Version and Revision are the table version and the store revision
	// that serve; zero while there is no table.
	Version  int64 `json:"version"`
	Revision int64 `json:"revision"`
	// Shared says the store is shared by several replicas.
	Shared bool `json:"shared"`
	// Degraded says the shared store was not read for longer than
	// StaleAfter: the proxy serves its last good table, which may be
	// behind the other replicas'.
	Degraded bool `json:"degraded"`
	// StalenessSeconds is the time since the store was last read.
	StalenessSeconds float64 `json:"staleness_seconds"`
	// StoreError is the last failure to read the store, while it lasts.
	StoreError string `json:"store_error,omitempty"`
	// Refused is the stored revision refused as invalid, while it is the
	// newest.
	Refused int64 `json:"refused_revision,omitempty"`
}

// Status reports what serves and how fresh it is.
func (p *Plane) Status() Status {
	p.mu.Lock()
	st := Status{Revision: p.revision, Shared: p.shared}
	if p.compiled != nil {
		st.Version = p.ctl.version
	}
	if p.refusedRev != 0 && p.refusedRev == p.revision {
		st.Refused = p.refusedRev
	}
	p.mu.Unlock()
	stale := p.follow.staleness()
	st.StalenessSeconds = stale.Seconds()
	st.Degraded = p.shared && stale > p.cfg.StaleAfter
	if err := p.follow.err(); err != nil {
		st.StoreError = err.Error()
	}
	return st
}

// Ready is the readiness check: it fails while the plane has no table,
// before a shared store was first read or while its only state is
// refused. A degraded replica stays ready: see Status.
func (p *Plane) Ready(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.compiled != nil {
		return nil
	}
	if p.refusedRev != 0 {
		return fmt.Errorf("no route table: the stored state at revision %d is refused", p.refusedRev)
	}
	return ErrNoTable
}

// WatchStore follows a shared store until ctx ends: it loads the newest
// state on each wake-up of the store's Changed, and every PollInterval
// when the store is behind (see behind). A store with one writer returns
// at once.
func (p *Plane) WatchStore(ctx context.Context) error {
	if !p.shared {
		return nil
	}
	changed := p.store.Changed()
	tick := time.NewTicker(p.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
			if !p.behind(ctx) {
				continue
			}
		}
		_ = p.Sync(ctx) // logged and counted inside
	}
}

// behind reports whether the store may hold a state newer than the one
// that serves: with a RevisionReader, whether the stored revision is
// newer (or there is no table yet), the read recorded as a Sync's is;
// with another store, always.
func (p *Plane) behind(ctx context.Context) bool {
	rr, ok := p.store.(RevisionReader)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	rev, err := rr.Revision(ctx)
	cancel()
	p.follow.read(err)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.compiled == nil || rev > p.revision
}

// Sync loads the store's newest state and serves it if it is newer than
// the one that serves.
func (p *Plane) Sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	st, err := p.store.Load(ctx)
	cancel()
	p.follow.read(err)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncLocked(st)
}

// refreshLocked is Sync under p.mu, for a change that found the store
// newer than the plane.
func (p *Plane) refreshLocked() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	st, err := p.store.Load(ctx)
	cancel()
	p.follow.read(err)
	if err != nil {
		return &PersistError{Err: err}
	}
	return p.syncLocked(st)
}

// syncLocked serves st if it is newer than what serves. It runs under
// p.mu.
func (p *Plane) syncLocked(st *State) error {
	if st == nil {
		if p.compiled == nil {
			// A store nobody has written yet: this replica starts it.
			return p.loadFirst(nil)
		}
		return nil
	}
	if st.Revision <= p.revision && p.compiled != nil || st.Revision == p.refusedRev {
		return nil
	}
	p.seenVersion = max(p.seenVersion, st.Version)
	if err := p.adopt(st); err != nil {
		// The next change is based on this revision, so that a valid
		// table saved over it repairs the store; the phases are not the
		// table, and follow.
		p.revision, p.refusedRev, p.phases = st.Revision, st.Revision, st.Phases
		p.follow.refused.Inc()
		p.follow.invalid.Set(1)
		p.log.Error("stored route table refused; the previous table keeps serving", "revision", st.Revision, "version", st.Version, "error", err)
		return err
	}
	p.follow.invalid.Set(0)
	return nil
}

// adopt serves st, a state another writer saved: the table it holds, or
// the routes file with its overrides. A state without a table, or whose
// table does not compile, is an *InvalidStateError and changes nothing.
// It runs under p.mu.
func (p *Plane) adopt(st *State) error {
	c := stateControl(st)
	var dropped, dormant []string
	if p.cfg.RoutesFile != "" {
		var err error
		if dropped, dormant, err = p.fromFile(&c); err != nil {
			return err
		}
	} else {
		if st.Table == nil || len(st.Table.Modules) == 0 {
			return &InvalidStateError{Revision: st.Revision, Err: errors.New("the state has no route table")}
		}
		c.source, c.base, c.effective = sourceState, st.Table, st.Table
	}
	t, err := p.compile(c.effective)
	if err != nil {
		return &InvalidStateError{Revision: st.Revision, Err: err}
	}
	publish := p.compiled == nil || c.version != p.ctl.version || !reflect.DeepEqual(c.effective, p.ctl.effective)
	p.ctl, p.phases, p.revision = c, st.Phases, st.Revision
	p.follow.revision.Set(float64(st.Revision))
	if publish {
		p.pub.Publish(t, c.version)
		p.compiled = t
		p.logOverrides(dormant, nil, dropped)
		p.log.Info("route table loaded from the control store", "version", c.version, "revision", st.Revision, "by", st.UpdatedBy)
	}
	return nil
}

// checkVersion checks a change's If-Match version against the table's. A
// replica of a shared store that is behind reads the store before it
// answers that the version does not match. It runs under p.mu.
func (p *Plane) checkVersion(ifVersion int64) error {
	if ifVersion == 0 || ifVersion == p.ctl.version {
		return nil
	}
	if p.shared {
		if err := p.refreshLocked(); err != nil {
			return err
		}
		if ifVersion == p.ctl.version {
			return nil
		}
	}
	return ErrVersion
}

// retrying runs op, a change under p.mu, and redoes it on the store's
// newer state when it lost a race to another writer, up to
// maxConflictRetries times, after a growing random pause so that
// replicas racing each other do not keep colliding. A change with
// If-Match is redone too, and answers ErrVersion then if the other
// writer moved the table's version: a phase change or an ack does not.
func (p *Plane) retrying(op func() error) error {
	for i := 0; ; i++ {
		err := op()
		var ce *ConflictError
		if !errors.As(err, &ce) {
			return err
		}
		if rerr := p.refreshLocked(); rerr != nil || i >= maxConflictRetries {
			return err
		}
		time.Sleep(rand.N(min(time.Millisecond<<i, 50*time.Millisecond)) + time.Millisecond)
	}
}
