// Package relay publishes the transactional outbox to Kafka.
//
// # Order and the BIGSERIAL trap
//
// A relay that reads "WHERE seq > last_seq" loses events on Postgres: a
// transaction draws its sequence number when it inserts but becomes visible
// when it commits, so a row with a lower number can appear after the relay
// has moved past it. This relay keeps, next to its position, the gaps it has
// seen below it: runs of numbers that were missing when it read a higher
// one. It keeps reading the gaps and publishes what appears in them. A gap
// is given up only when it is certain that nothing can appear in it any
// more: on Postgres, once every transaction that was running when the gap
// was seen has ended (the current snapshot's xmin has passed the xmax of a
// snapshot taken after the gap was read; the outbox trigger gives each
// transaction an xid before it draws a number, so the one that drew a
// missing number was among them); on SQLite at once, since one writer
// commits at a time and numbers are drawn in commit order.
//
// Publishing past a gap keeps each aggregate's order because the outbox
// trigger takes a transaction-scoped lock on the aggregate before it draws
// the number: while a transaction with an aggregate's event is in flight, no
// later event of that aggregate can commit, so the visible events of an
// aggregate are always a prefix, by seq, of all its events. The relay reads
// the rows above its position before those in its gaps, so that the gap
// read sees every earlier event of an aggregate whose later event the first
// read saw. It publishes the gaps' rows first and all in seq order,
// kafka-go's Hash balancer puts an aggregate's events on one partition, and
// kafka-go writes one partition's batches in order.
//
// # Several relays
//
// Relays with the same group name share one lease row: only the holder
// publishes, and it moves the position with an update fenced on owning the
// lease. Standbys take over when the lease expires. In normal operation
// every event is published once; a relay that dies after publishing a batch
// and before recording it causes that batch to be published again (at least
// once), which consumers absorb with their inbox.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/internal/retry"
)

// Options are what a relay needs besides its config.
type Options struct {
	// DB is the database that holds the outbox. If nil, Run opens
	// Config.DSN, and Run (or Close) closes it; a DB given here is the
	// caller's to close, after Run has returned.
	DB *gorm.DB
	// Brokers are the Kafka bootstrap brokers (host:port).
	Brokers []string
	// Kafka holds the topic prefix, partition count and client id.
	Kafka changefeed.KafkaConfig
	// Logger receives the relay's log. If nil, slog.Default() is used.
	Logger *slog.Logger
	// Registerer receives the relay's metrics. If nil, they are kept in a
	// registry of their own.
	Registerer prometheus.Registerer
	// Instance names this relay in the lease. If empty, a name of the form
	// host-pid-pidns-random is used, which lets a relay started on the same
	// host take the lease of one whose process is gone at once instead of
	// waiting for it to expire (see goneLocal).
	Instance string
}

// Relay publishes one database's outbox to Kafka.
type Relay struct {
	cfg       Config
	opt       Options
	log       *slog.Logger
	instance  string
	writer    *kafka.Writer
	transport *kafka.Transport
	topics    *changefeed.Topics
	m         *metrics

	// mu guards gdb, ownDB and closed, which Run's start and Close share.
	mu     sync.Mutex
	gdb    *gorm.DB
	ownDB  bool
	closed bool
	// store is set by Run before it starts its loop.
	store *store
	// reads counts the prefetches in flight; Close waits for them, so
	// that none uses the database after it.
	reads sync.WaitGroup

	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error

	published atomic.Int64
	leading   atomic.Bool
	position  atomic.Int64

	// pf is the read of the next batch, started while the current one is
	// published when a backlog is waiting. Only Run's goroutine touches it.
	pf *prefetch
}

// prefetch is a read of the rows after a position, running in the
// background. Reading ahead is safe: rows that commit later with lower
// numbers than those it returns are gaps, which the next cycles find.
type prefetch struct {
	after int64
	rows  []row
	err   error
	done  chan struct{}
}

func (r *Relay) startPrefetch(ctx context.Context, after int64) {
	pf := &prefetch{after: after, done: make(chan struct{})}
	r.pf = pf
	r.reads.Add(1)
	go func() {
		defer r.reads.Done()
		defer close(pf.done)
		pf.rows, pf.err = r.store.readAfter(ctx, after, r.cfg.BatchSize)
	}()
}

// takePrefetch returns the prefetched rows after position, or false if there
// are none to use.
func (r *Relay) takePrefetch(position int64) ([]row, bool) {
	pf := r.pf
	r.pf = nil
	if pf == nil || pf.after != position {
		return nil, false
	}
	<-pf.done
	if pf.err != nil {
		return nil, false
	}
	return pf.rows, true
}

// New builds a relay. It starts nothing and opens nothing: Run opens the
// database (when opt.DB is nil) and talks to the broker.
func New(cfg Config, opt Options) (*Relay, error) {
	cfg.SetDefaults("")
	opt.Kafka.SetDefaults("")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relay config: %w", err)
	}
	if err := opt.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("relay kafka config: %w", err)
	}
	if len(opt.Brokers) == 0 {
		return nil, errors.New("relay: no Kafka brokers given")
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("relay", cfg.Name)
	reg := opt.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("relay metrics: %w", err)
	}
	if opt.DB == nil && cfg.DSN == "" {
		return nil, errors.New("relay: no database: set relay.dsn or monolith.dsn")
	}
	instance := opt.Instance
	if instance == "" {
		instance = defaultInstance()
	}
	transport := &kafka.Transport{ClientID: opt.Kafka.ClientID, MetadataTTL: 30 * time.Second}
	r := &Relay{
		cfg:       cfg,
		opt:       opt,
		log:       log,
		instance:  instance,
		gdb:       opt.DB,
		transport: transport,
		writer: &kafka.Writer{
			Addr:         kafka.TCP(opt.Brokers...),
			Balancer:     opt.Kafka.Balancer(),
			RequiredAcks: kafka.RequireAll,
			// The relay hands the writer whole batches; BatchSize and
			// BatchBytes at the batch's limits keep each partition's share
			// of a call in one produce request, and the short BatchTimeout
			// replaces kafka-go's 1s default wait for more.
			BatchSize:    cfg.BatchSize,
			BatchBytes:   int64(cfg.MaxBatchBytes) + 64<<10,
			BatchTimeout: cfg.BatchTimeout,
			// A failed write is retried by the relay, which renews its lease
			// in between; kafka-go's own attempts cover brief hiccups.
			MaxAttempts:     3,
			WriteBackoffMin: 20 * time.Millisecond,
			WriteBackoffMax: 200 * time.Millisecond,
			// Topics are created with the configured partitions before the
			// first write; allowing auto-creation only makes the writer
			// refresh its cached metadata for a topic it has not seen.
			AllowAutoTopicCreation: true,
			Transport:              transport,
		},
		topics: changefeed.NewTopics(opt.Brokers, opt.Kafka.Partitions, opt.Kafka.ReplicationFactor, transport),
		m:      m,
	}
	return r, nil
}

// Published is how many events this instance has published.
func (r *Relay) Published() int64 { return r.published.Load() }

// Leading reports whether this instance holds the lease.
func (r *Relay) Leading() bool { return r.leading.Load() }

// Position is the highest sequence number this instance has published past.
func (r *Relay) Position() int64 { return r.position.Load() }

// Run opens the database unless Options.DB gave one, and publishes until ctx
// ends. Database and broker failures are logged and retried with backoff;
// Run returns an error only if it cannot start. It returns once nothing it
// started uses the database any more, having called Close.
func (r *Relay) Run(ctx context.Context) error {
	ran := false
	r.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("relay: Run called twice")
	}
	defer r.Close()
	if err := r.open(ctx); err != nil {
		return err
	}
	bo := retry.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := r.store.ensureGroup(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("relay waiting for its tables", "error", err)
		if !retry.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
	bo.Reset()
	r.log.Info("relay started", "instance", r.store.owner, "batch_size", r.cfg.BatchSize)

	var (
		st          state
		lastRenew   time.Time
		lastMetrics time.Time
		lastCleanup = time.Now()
	)
	for ctx.Err() == nil {
		if !r.leading.Load() || time.Since(lastRenew) > r.cfg.LeaseTTL/3 {
			ok, from, err := r.store.acquire(ctx, r.cfg.LeaseTTL)
			if err != nil {
				r.m.errors.WithLabelValues("lease").Inc()
				r.log.Warn("relay lease", "error", err)
				r.setLeading(false)
				retry.Sleep(ctx, bo.Next())
				continue
			}
			lastRenew = time.Now()
			if ok && !r.leading.Load() {
				st = state{}
				st.position, st.gaps, err = r.store.load(ctx)
				if err != nil {
					r.m.errors.WithLabelValues("lease").Inc()
					r.log.Warn("relay state", "error", err)
					retry.Sleep(ctx, bo.Next())
					continue
				}
				r.position.Store(st.position)
				r.pf = nil
				if from != "" {
					r.log.Info("relay took the lease of an instance whose process is gone", "from", from)
				}
				r.log.Info("relay leading", "position", st.position, "gaps", len(st.gaps))
			}
			if !ok && r.leading.Load() {
				r.log.Warn("relay lease taken by another instance; standing by")
			}
			r.setLeading(ok)
			if !ok {
				retry.Sleep(ctx, r.cfg.LeaseTTL/3)
				continue
			}
		}

		n, more, err := r.cycle(ctx, &st, &lastRenew)
		if err == nil && n == 0 {
			// Drained: record where the relay stands.
			err = r.flush(ctx, &st, &lastRenew)
		}
		// The backlog is read whether the cycle failed or not.
		if time.Since(lastMetrics) >= time.Second && r.leading.Load() && ctx.Err() == nil {
			lastMetrics = time.Now()
			r.updateBacklog(ctx, st.position)
		}
		switch {
		case err == nil:
			bo.Reset()
		case ctx.Err() != nil:
		case errors.Is(err, ErrLeaseLost):
			r.log.Warn("relay lease lost; standing by")
			r.setLeading(false)
		default:
			r.log.Warn("relay cycle failed; retrying", "error", err, "position", st.position)
			retry.Sleep(ctx, bo.Next())
			continue
		}

		if time.Since(lastCleanup) >= r.cfg.CleanupInterval && r.leading.Load() {
			lastCleanup = time.Now()
			if deleted, err := r.store.cleanup(ctx, r.cfg.Retention); err != nil {
				r.m.errors.WithLabelValues("cleanup").Inc()
				r.log.Warn("outbox cleanup", "error", err)
			} else if deleted > 0 {
				r.m.cleaned.Add(float64(deleted))
				r.log.Info("outbox cleanup", "deleted", deleted)
			}
		}
		switch {
		case more && n > 0:
			// A backlog: go on at once.
		case n > 0:
			// Events are flowing: look again soon, so that a steady
			// stream waits a fraction of the poll interval.
			retry.Sleep(ctx, r.cfg.PollInterval/4)
		default:
			retry.Sleep(ctx, r.cfg.PollInterval)
		}
	}
	if r.leading.Load() {
		r.stop(&st, &lastRenew)
		r.setLeading(false)
	}
	r.log.Info("relay stopped", "published", r.published.Load())
	return nil
}

// state is what the leader knows of the stream.
type state struct {
	position int64
	gaps     []gap
	// dirty reports a position and gaps not yet recorded, pending the
	// events published since the last record, committed its time.
	dirty     bool
	pending   int
	committed time.Time
}

// cycle reads one batch, publishes it and records the new position. It
// returns how many events it published, and whether more are waiting: the
// read filled the batch, or the batch was cut at MaxBatchBytes.
func (r *Relay) cycle(ctx context.Context, st *state, lastRenew *time.Time) (n int, more bool, err error) {
	readStart := time.Now()
	xmin := int64(math.MaxInt64)
	if len(st.gaps) > 0 && !r.store.d.finalGaps {
		var xmax int64
		xmin, xmax, err = r.store.snapshot(ctx)
		if err != nil {
			r.m.errors.WithLabelValues("read").Inc()
			return 0, false, err
		}
		for i := range st.gaps {
			if st.gaps[i].Horizon == 0 {
				st.gaps[i].Horizon = xmax
			}
		}
	}
	// The rows above the position are read before the gaps, each in its
	// own statement and snapshot: an event seen above the position then has
	// its aggregate's earlier events committed (see the package comment), so
	// the gap read, which starts later, sees those that are in gaps. Read the
	// other way round, a gap's event and a later one of its aggregate that
	// commit between the reads would be published out of order.
	fresh, ok := r.takePrefetch(st.position)
	if !ok {
		fresh, err = r.store.readAfter(ctx, st.position, r.cfg.BatchSize)
		if err != nil {
			r.m.errors.WithLabelValues("read").Inc()
			return 0, false, err
		}
	}
	gapRows, err := r.store.readGaps(ctx, st.gaps)
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return 0, false, err
	}
	room := r.cfg.BatchSize - len(gapRows)
	fresh = fresh[:max(0, min(room, len(fresh)))]

	if len(gapRows)+len(fresh) > 0 {
		r.m.readTime.Observe(time.Since(readStart).Seconds())
	}

	// Cut the batch at MaxBatchBytes; the rest waits for the next cycle.
	rows := append(gapRows, fresh...)
	total, cut := 0, len(rows)
	for i := range rows {
		total += rows[i].size()
		if total > r.cfg.MaxBatchBytes && i > 0 {
			cut = i
			break
		}
	}
	more = cut < len(rows) || (room > 0 && len(fresh) == room)
	rows = rows[:cut]
	nGap := min(len(gapRows), cut)
	fresh = rows[nGap:]

	if more {
		// A backlog is waiting: read the next batch while this one is
		// published.
		next := st.position
		if len(fresh) > 0 {
			next = fresh[len(fresh)-1].seq
		}
		r.startPrefetch(ctx, next)
	}
	if len(rows) > 0 {
		if err := r.publish(ctx, rows, lastRenew); err != nil {
			return 0, false, err
		}
	}

	gaps := fillGaps(st.gaps, rows[:nGap])
	if nGap == len(gapRows) {
		// Every row that has appeared in the gaps is published; a gap whose
		// transactions have all ended is final.
		kept := gaps[:0:0]
		for _, g := range gaps {
			final := r.store.d.finalGaps || (g.Horizon != 0 && g.Horizon <= xmin)
			if final {
				r.log.Debug("relay gap closed", "from", g.Lo, "to", g.Hi)
				continue
			}
			kept = append(kept, g)
		}
		gaps = kept
	}
	if found := newGaps(st.position, fresh); len(found) > 0 && !r.store.d.finalGaps {
		gaps = append(gaps, found...)
	}
	position := st.position
	if len(fresh) > 0 {
		position = fresh[len(fresh)-1].seq
	}
	if len(rows) == 0 && sameGaps(gaps, st.gaps) {
		return 0, false, nil
	}
	st.position, st.gaps = position, gaps
	st.pending += len(rows)
	st.dirty = true
	r.m.gaps.Set(float64(len(gaps)))
	if time.Since(st.committed) >= commitInterval {
		if err := r.flush(ctx, st, lastRenew); err != nil {
			return len(rows), more, err
		}
	}
	return len(rows), more, nil
}

// commitInterval is how often, at most, the relay records its position
// while events flow; it records it at once when the outbox is drained. A
// position not yet recorded when a relay dies costs only republished events,
// and recording it less often keeps the relay's writes from competing with
// the application's (SQLite has one write lock).
const commitInterval = 100 * time.Millisecond

// flush records the position and gaps, fenced on the lease.
func (r *Relay) flush(ctx context.Context, st *state, lastRenew *time.Time) error {
	if !st.dirty {
		return nil
	}
	start := time.Now()
	if err := r.store.commit(ctx, st.position, st.gaps, st.pending, r.cfg.LeaseTTL); err != nil {
		if !errors.Is(err, ErrLeaseLost) {
			r.m.errors.WithLabelValues("commit").Inc()
		}
		return err
	}
	now := time.Now()
	r.m.commitTime.Observe(now.Sub(start).Seconds())
	*lastRenew = now
	st.committed = now
	st.dirty, st.pending = false, 0
	r.position.Store(st.position)
	return nil
}

// publish writes rows to the broker, retrying until it succeeds, ctx ends
// or the lease is lost.
func (r *Relay) publish(ctx context.Context, rows []row, lastRenew *time.Time) error {
	msgs := make([]kafka.Message, len(rows))
	var topics []string
	seen := map[string]bool{}
	for i := range rows {
		msgs[i] = changefeed.Message(r.opt.Kafka.TopicPrefix, rows[i].ev)
		if t := msgs[i].Topic; !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	bo := retry.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	lastBacklog := time.Now()
	for attempt := 0; ; attempt++ {
		err := r.topics.Ensure(ctx, topics...)
		if err == nil {
			start := time.Now()
			err = r.writer.WriteMessages(ctx, msgs...)
			if err == nil {
				r.m.batchTime.Observe(time.Since(start).Seconds())
				break
			}
			var werrs kafka.WriteErrors
			if errors.As(err, &werrs) {
				r.m.duplicates.Add(float64(len(werrs) - werrs.Count()))
			}
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				r.topics.Forget()
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.m.errors.WithLabelValues("publish").Inc()
		if attempt%10 == 0 {
			r.log.Warn("relay publish failed; retrying", "error", err, "events", len(msgs), "attempt", attempt+1)
		}
		if !retry.Sleep(ctx, bo.Next()) {
			return ctx.Err()
		}
		// Keep the lease while the broker is away, and stop if it is gone:
		// another relay is publishing these rows.
		ok, _, lerr := r.store.acquire(ctx, r.cfg.LeaseTTL)
		if lerr == nil && !ok {
			return ErrLeaseLost
		}
		if lerr == nil {
			*lastRenew = time.Now()
		}
		// Keep the backlog gauges current while the batch is stuck: a
		// growing backlog is what shows the outage.
		if time.Since(lastBacklog) >= time.Second {
			lastBacklog = time.Now()
			r.updateBacklog(ctx, r.position.Load())
		}
	}
	now := time.Now()
	r.m.batchSize.Observe(float64(len(rows)))
	perTopic := make(map[string]int, len(topics))
	for i := range rows {
		perTopic[msgs[i].Topic]++
		r.m.delay.Observe(now.Sub(rows[i].ev.OccurredAt).Seconds())
	}
	for t, n := range perTopic {
		r.m.published.WithLabelValues(t).Add(float64(n))
	}
	r.published.Add(int64(len(rows)))
	return nil
}

func (r *Relay) updateBacklog(ctx context.Context, position int64) {
	n, oldest, err := r.store.backlog(ctx, position, 1_000_000)
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return
	}
	r.m.backlog.Set(float64(n))
	if oldest.IsZero() {
		r.m.oldestAge.Set(0)
	} else {
		r.m.oldestAge.Set(max(0, time.Since(oldest).Seconds()))
	}
}

// stop records the position and gives the lease up, so that a standby
// carries on at once and publishes nothing twice. It gives the database two
// seconds, and a lease that is not released only expires (a position not
// recorded only republishes events). It waits for its writes to end even so,
// so that none uses the database after Run has returned: a SQLite write
// that waits for another connection's lock heeds its context only when the
// busy timeout (10 s) ends.
func (r *Relay) stop(st *state, lastRenew *time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := r.flush(ctx, st, lastRenew)
	if err != nil {
		err = fmt.Errorf("record position: %w", err)
	} else {
		err = r.store.release(ctx)
	}
	if err != nil {
		r.log.Warn("relay stop; the lease will expire", "error", err)
	}
}

func (r *Relay) setLeading(ok bool) {
	r.leading.Store(ok)
	if ok {
		r.m.leader.Set(1)
	} else {
		r.m.leader.Set(0)
	}
}

// open opens the database when the relay owns it and builds the store.
func (r *Relay) open(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("relay: Run after Close")
	}
	if r.gdb == nil {
		gdb, err := db.Open(ctx, r.cfg.DSN, db.Options{Logger: r.log})
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		r.gdb, r.ownDB = gdb, true
	}
	r.store = &store{gdb: r.gdb, d: dialects[db.DialectOf(r.gdb)], name: r.cfg.Name, owner: r.instance}
	return nil
}

// Close releases what the relay holds: it waits for reads still running,
// closes the Kafka writer and its connections, and closes the database Run
// opened (never Options.DB). Run calls it as it returns; call it for a relay
// that is never run, not while Run runs (end Run's context instead). Calls
// after the first do nothing.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.reads.Wait()
		err := r.writer.Close()
		r.transport.CloseIdleConnections()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.closed = true
		if r.ownDB {
			err = errors.Join(err, db.Close(r.gdb))
		}
		r.closeErr = err
	})
	return r.closeErr
}

func sameGaps(a, b []gap) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Lo != b[i].Lo || a[i].Hi != b[i].Hi {
			return false
		}
	}
	return true
}
