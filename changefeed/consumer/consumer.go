// Package consumer reads change events from Kafka into a service's database,
// with an effect of exactly once.
//
// A Consumer is a kafka-go consumer group. For each event it calls the
// handler registered for the event's type, giving it the decoded envelope
// and a transaction on the service's database. In that same transaction it
// records the event's id in the inbox (changefeed_inbox); an event whose id
// is already there is skipped. Offsets are committed to Kafka only after the
// transaction has committed. So an event is delivered at least once (after a
// crash or a rebalance it comes again) and its effect is applied once.
//
// A handler that fails is retried with backoff; after Config.MaxAttempts the
// event goes to the dead-letter topic <topic>.dlq, with the error in its
// headers, and the partition carries on. The consumer is a tolerant reader:
// unknown payload fields are ignored (Event.Decode), events of types without
// a handler are skipped and counted, events of older schema versions are
// brought up to the handler's version by registered upcasters, and newer
// versions are passed as they are, counted, on the rule that a compatible
// change only adds fields.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/internal/lifecycle"
	"github.com/stranglerkit/strangler/internal/retry"
	"github.com/stranglerkit/strangler/migrations"
)

// Migrations is the golang-migrate set that creates the inbox. Migrate it
// into the consumer's database.
func Migrations() db.Migrations {
	return db.Migrations{Name: "inbox", FS: migrations.FS("changefeed/inbox")}
}

// Handler applies one event to the consumer's database through tx, the
// transaction in which the consumer records the event as processed. ctx
// carries tx as well (db.Conn(ctx, gdb) returns it) and the event's trace
// context. A handler must make its effects only through tx: anything else
// (an HTTP call, a file) is not rolled back with it and may happen twice.
type Handler func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error

// Upcaster turns the payload of one schema version into the next.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// ErrPermanent marks errors that retrying cannot fix: the event goes to the
// dead-letter topic at once.
var ErrPermanent = errors.New("permanent failure")

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// Options are what a consumer needs besides its config.
type Options struct {
	// DB is the consumer's database, with the inbox migrated (Migrations).
	DB *gorm.DB
	// Brokers are the Kafka bootstrap brokers (host:port).
	Brokers []string
	// Kafka gives the topic prefix (to name the aggregate type of events
	// that lack the header), the partitions of the dead-letter topics and
	// the client id.
	Kafka changefeed.KafkaConfig
	// Logger receives the consumer's log. If nil, slog.Default() is used.
	Logger *slog.Logger
	// Registerer receives the consumer's metrics. If nil, they are kept in a
	// registry of their own.
	Registerer prometheus.Registerer
	// OnHandled, if set, is called for each applied event once its
	// transaction has committed, with the time it did: for read-your-writes
	// notifications, or for measuring end-to-end latency.
	OnHandled func(ev changefeed.Event, committed time.Time)
}

type handlerEntry struct {
	version int
	fn      Handler
}

// Consumer consumes events into a database.
type Consumer struct {
	cfg    Config
	opt    Options
	log    *slog.Logger
	gdb    *gorm.DB
	m      *metrics
	topics *changefeed.Topics
	dlq    *kafka.Writer
	// transport carries the dead-letter writer's and the topic admin's
	// connections, which Close closes.
	transport *kafka.Transport

	mu        sync.Mutex
	handlers  map[string]handlerEntry
	fallback  *handlerEntry
	upcasters map[string]map[int]Upcaster
	ignore    map[string]bool
	started   bool

	life lifecycle.Guard

	handled atomic.Int64
}

// New builds a consumer. It opens no connection and starts no goroutine:
// Run does. Register handlers with Handle before Run.
func New(cfg Config, opt Options) (*Consumer, error) {
	cfg.SetDefaults()
	opt.Kafka.SetDefaults("")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	if opt.DB == nil {
		return nil, errors.New("consumer: no database")
	}
	if len(opt.Brokers) == 0 {
		return nil, errors.New("consumer: no Kafka brokers given")
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("consumer", cfg.Name)
	reg := opt.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}
	transport := &kafka.Transport{ClientID: opt.Kafka.ClientID}
	c := &Consumer{
		cfg:       cfg,
		opt:       opt,
		log:       log,
		gdb:       opt.DB,
		m:         m,
		transport: transport,
		topics:    changefeed.NewTopics(opt.Brokers, opt.Kafka.Partitions, opt.Kafka.ReplicationFactor, transport),
		dlq: &kafka.Writer{
			Addr:                   kafka.TCP(opt.Brokers...),
			Balancer:               opt.Kafka.Balancer(),
			RequiredAcks:           kafka.RequireAll,
			BatchTimeout:           time.Millisecond,
			AllowAutoTopicCreation: true,
			Transport:              transport,
		},
		handlers:  map[string]handlerEntry{},
		upcasters: map[string]map[int]Upcaster{},
		ignore:    map[string]bool{},
	}
	for _, o := range cfg.IgnoreOrigins {
		c.ignore[o] = true
	}
	return c, nil
}

// Handle registers h for events of eventType, written for schema version
// version of its payload: older events are upcast to it first.
func (c *Consumer) Handle(eventType string, version int, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("consumer: Handle after Run")
	}
	c.handlers[eventType] = handlerEntry{version: max(version, 1), fn: h}
}

// HandleOther registers h for every event type that has no handler of its
// own, such as a replicator that stores every event. Without it such events
// are skipped and counted.
func (c *Consumer) HandleOther(version int, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("consumer: HandleOther after Run")
	}
	c.fallback = &handlerEntry{version: max(version, 1), fn: h}
}

// Upcast registers fn to turn eventType payloads of schema version from into
// version from+1.
func (c *Consumer) Upcast(eventType string, from int, fn Upcaster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("consumer: Upcast after Run")
	}
	if c.upcasters[eventType] == nil {
		c.upcasters[eventType] = map[int]Upcaster{}
	}
	c.upcasters[eventType][from] = fn
}

// Close releases what the consumer holds: the dead-letter writer and the
// Kafka connections of the writer and the topic admin. The database is the
// caller's (Options.DB). Run calls it as it returns; call it for a consumer
// that is never run. Calls after the first do nothing.
func (c *Consumer) Close() error {
	return c.life.Close(func() error {
		err := c.dlq.Close()
		c.transport.CloseIdleConnections()
		return err
	})
}

// Handled is how many events this instance has applied (duplicates and
// skipped events not counted).
func (c *Consumer) Handled() int64 { return c.handled.Load() }

// Run consumes until ctx ends, and returns once the fetcher it started has
// ended and its connections are closed (it calls Close). It returns an
// error only if it cannot start, or if an event fails every attempt while
// dead-lettering is off.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.life.Run("consumer"); err != nil {
		return err
	}
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	defer func() {
		if err := c.Close(); err != nil {
			c.log.Warn("consumer close", "error", err)
		}
	}()

	bo := retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := c.topics.Ensure(ctx, c.cfg.Topics...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("consumer waiting for the broker", "error", err)
		if !retry.Sleep(ctx, bo.Next()) {
			return nil
		}
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     c.opt.Brokers,
		GroupID:     c.cfg.Name,
		GroupTopics: c.cfg.Topics,
		Dialer:      &kafka.Dialer{ClientID: c.opt.Kafka.ClientID, Timeout: 10 * time.Second, DualStack: true},
		MinBytes:    1,
		MaxBytes:    10 << 20,
		MaxWait:     c.cfg.MaxWait,
		// Offsets are committed by CommitMessages, synchronously, after the
		// database transaction.
		CommitInterval:         0,
		StartOffset:            kafka.FirstOffset,
		SessionTimeout:         c.cfg.SessionTimeout,
		RebalanceTimeout:       c.cfg.SessionTimeout,
		HeartbeatInterval:      c.cfg.SessionTimeout / 10,
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		QueueCapacity:          c.cfg.MaxBatch,
		ReadBackoffMin:         50 * time.Millisecond,
		ReadBackoffMax:         time.Second,
		ErrorLogger:            kafka.LoggerFunc(func(msg string, args ...any) { c.log.Debug("kafka-go: " + fmt.Sprintf(msg, args...)) }),
	})
	defer reader.Close()
	c.log.Info("consumer started", "topics", strings.Join(c.cfg.Topics, ","))

	fetched := make(chan kafka.Message, c.cfg.MaxBatch)
	fetchCtx, stopFetch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.fetch(fetchCtx, reader, fetched)
	}()
	defer func() {
		stopFetch()
		wg.Wait()
	}()

	for {
		var first kafka.Message
		select {
		case <-ctx.Done():
			c.log.Info("consumer stopped", "handled", c.handled.Load())
			return nil
		case first = <-fetched:
		}
		batch := []kafka.Message{first}
	drain:
		for len(batch) < c.cfg.MaxBatch {
			select {
			case m := <-fetched:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := c.process(ctx, reader, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (c *Consumer) fetch(ctx context.Context, r *kafka.Reader, out chan<- kafka.Message) {
	bo := retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			c.log.Warn("consumer fetch", "error", err)
			if !retry.Sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// item is one fetched message on its way through process.
type item struct {
	msg  kafka.Message
	ev   changefeed.Event
	h    handlerEntry
	err  error  // a permanent failure found before handling
	skip string // why the event is not handled, if it is not
}

func (c *Consumer) decode(batch []kafka.Message) []item {
	items := make([]item, len(batch))
	for i, m := range batch {
		it := &items[i]
		it.msg = m
		ev, err := changefeed.FromMessage(c.opt.Kafka.TopicPrefix, m)
		if err != nil {
			it.err = Permanent(err)
			continue
		}
		it.ev = ev
		if ev.Origin != "" && c.ignore[ev.Origin] {
			it.skip = "origin"
			continue
		}
		h, ok := c.handlers[ev.Type]
		if !ok {
			if c.fallback == nil {
				it.skip = "unknown_type"
				continue
			}
			h = *c.fallback
		}
		it.h = h
		switch v := ev.Version(); {
		case v < h.version:
			payload := ev.Payload
			for from := v; from < h.version; from++ {
				up := c.upcasters[ev.Type][from]
				if up == nil {
					it.err = Permanent(fmt.Errorf("event %s %s: no upcaster from schema version %d to %d", ev.Type, ev.ID, from, from+1))
					break
				}
				next, err := up(payload)
				if err != nil {
					it.err = Permanent(fmt.Errorf("event %s %s: upcast from schema version %d: %w", ev.Type, ev.ID, from, err))
					break
				}
				payload = next
			}
			if it.err == nil {
				it.ev.Payload = payload
				it.ev.SchemaVersion = h.version
				c.m.upcast.Inc()
			}
		case v > h.version:
			c.m.newer.Inc()
		}
	}
	return items
}

// process applies a batch in as few transactions as it can and commits its
// offsets. Events are applied in order; a failing one is retried alone,
// after the ones before it have committed, and then dead-lettered.
func (c *Consumer) process(ctx context.Context, r *kafka.Reader, batch []kafka.Message) error {
	items := c.decode(batch)
	bound := len(items)
	// failedAt and failedErr remember an event whose handler failed in a
	// larger transaction: once the events before it have committed, it goes
	// straight to its retries, its first attempt spent.
	failedAt, failedErr := -1, error(nil)
	bo := retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for start := 0; start < len(items); {
		if start == failedAt {
			if err := c.retry(ctx, &items[start], failedErr); err != nil {
				return err
			}
			c.commit(ctx, r, items[start:start+1])
			start++
			bound = len(items)
			failedAt = -1
			continue
		}
		end := start
		for end < bound && items[end].err == nil {
			end++
		}
		if end == start {
			it := &items[start]
			if it.err == nil {
				return fmt.Errorf("consumer: internal error: empty segment at %d", start)
			}
			if err := c.giveUp(ctx, it, it.err, 1); err != nil {
				return err
			}
			c.commit(ctx, r, items[start:start+1])
			start++
			bound = len(items)
			continue
		}
		seg := items[start:end]
		failed, herr, err := c.apply(ctx, seg)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.m.errors.Inc()
			c.log.Warn("consumer transaction failed; retrying", "error", err, "events", len(seg))
			if !retry.Sleep(ctx, bo.Next()) {
				return ctx.Err()
			}
		case failed < 0:
			bo.Reset()
			c.commit(ctx, r, seg)
			start = end
			bound = len(items)
		case failed > 0:
			// Apply the events before the failing one on their own first.
			bound = start + failed
			failedAt, failedErr = start+failed, herr
		default:
			if err := c.retry(ctx, &items[start], herr); err != nil {
				return err
			}
			c.commit(ctx, r, items[start:start+1])
			start++
			bound = len(items)
		}
	}
	return nil
}

// errRollback rolls a transaction back after a handler failed.
var errRollback = errors.New("handler failed")

// apply handles seg in one transaction. It returns the index of the first
// event whose handler failed, with its error, after rolling everything
// back; -1 when all committed. err reports a failure of the database.
func (c *Consumer) apply(ctx context.Context, seg []item) (failed int, herr error, err error) {
	failed = -1
	var dups, skipped []int
	var handled []int
	err = db.Transact(ctx, c.gdb, func(ctx context.Context) error {
		dups, skipped, handled = dups[:0], skipped[:0], handled[:0]
		tx := db.Conn(ctx, c.gdb)
		fresh, err := c.claim(tx, seg)
		if err != nil {
			return err
		}
		for j := range seg {
			it := &seg[j]
			if it.skip != "" {
				skipped = append(skipped, j)
				continue
			}
			if !fresh[it.ev.ID] {
				dups = append(dups, j)
				continue
			}
			// A second copy of an event in the same batch is a duplicate.
			delete(fresh, it.ev.ID)
			hctx := ctx
			if tp, perr := changefeed.ParseTraceParent(it.ev.TraceParent); perr == nil {
				hctx = changefeed.WithTraceParent(ctx, tp.Child().String())
			}
			if herr = callHandler(hctx, it.h.fn, tx, it.ev); herr != nil {
				failed = j
				return errRollback
			}
			handled = append(handled, j)
		}
		return nil
	})
	if failed >= 0 {
		return failed, herr, nil
	}
	if err != nil {
		return -1, nil, err
	}
	now := time.Now()
	for _, j := range handled {
		ev := &seg[j].ev
		c.m.handled.WithLabelValues(ev.Type).Inc()
		if !ev.OccurredAt.IsZero() {
			c.m.latency.Observe(now.Sub(ev.OccurredAt).Seconds())
		}
		if c.opt.OnHandled != nil {
			c.opt.OnHandled(*ev, now)
		}
	}
	c.handled.Add(int64(len(handled)))
	c.m.duplicates.Add(float64(len(dups)))
	for _, j := range skipped {
		c.m.skipped.WithLabelValues(seg[j].skip).Inc()
	}
	return -1, nil, nil
}

// callHandler runs h, turning a panic into an error so that one bad event
// cannot take the consumer down.
func callHandler(ctx context.Context, h Handler, tx *gorm.DB, ev changefeed.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, tx, ev)
}

// claimChunk keeps one inbox INSERT well under the bind-parameter limits.
const claimChunk = 500

// claim records the events of seg that are to be handled in the inbox and
// returns the ids that were not there yet.
func (c *Consumer) claim(tx *gorm.DB, seg []item) (map[uuid.UUID]bool, error) {
	fresh := map[uuid.UUID]bool{}
	var pending []*item
	seen := map[uuid.UUID]bool{}
	for j := range seg {
		if seg[j].skip == "" && !seen[seg[j].ev.ID] {
			seen[seg[j].ev.ID] = true
			pending = append(pending, &seg[j])
		}
	}
	for start := 0; start < len(pending); start += claimChunk {
		chunk := pending[start:min(start+claimChunk, len(pending))]
		var sb strings.Builder
		sb.WriteString("INSERT INTO changefeed_inbox (consumer, event_id, event_type) VALUES ")
		args := make([]any, 0, 3*len(chunk))
		for i, it := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?)")
			args = append(args, c.cfg.Name, it.ev.ID.String(), it.ev.Type)
		}
		sb.WriteString(" ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id")
		rows, err := tx.Raw(sb.String(), args...).Rows()
		if err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, fmt.Errorf("inbox: %w", err)
			}
			id, err := uuid.Parse(s)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("inbox: id %q: %w", s, err)
			}
			fresh[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	return fresh, nil
}

// retry tries a failed event alone until it succeeds, fails permanently or
// runs out of attempts, and then dead-letters it.
func (c *Consumer) retry(ctx context.Context, it *item, err error) error {
	attempts := 1
	bo := retry.Backoff{Min: c.cfg.RetryBackoff, Max: c.cfg.RetryBackoffMax}
	for attempts < c.cfg.MaxAttempts && !errors.Is(err, ErrPermanent) {
		c.m.retries.Inc()
		c.log.Info("consumer retrying event", "event", it.ev.ID, "type", it.ev.Type, "attempt", attempts+1, "error", err)
		if !retry.Sleep(ctx, bo.Next()) {
			return ctx.Err()
		}
		failed, herr, ierr := c.apply(ctx, []item{*it})
		if ierr != nil {
			// The database failed, not the handler: wait without spending
			// an attempt.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.m.errors.Inc()
			c.log.Warn("consumer transaction failed; retrying", "error", ierr)
			continue
		}
		if failed < 0 {
			return nil
		}
		attempts++
		err = herr
	}
	return c.giveUp(ctx, it, err, attempts)
}

// Dead-letter headers, added to the event's own.
const (
	HeaderDLQError     = "dlq.error"
	HeaderDLQTopic     = "dlq.topic"
	HeaderDLQPartition = "dlq.partition"
	HeaderDLQOffset    = "dlq.offset"
	HeaderDLQConsumer  = "dlq.consumer"
	HeaderDLQAttempts  = "dlq.attempts"
	HeaderDLQFailedAt  = "dlq.failed_at"
)

// giveUp sends the event to the dead-letter topic, retrying until the
// broker takes it, or stops the consumer when dead-lettering is off.
func (c *Consumer) giveUp(ctx context.Context, it *item, cause error, attempts int) error {
	m := it.msg
	if !*c.cfg.DeadLetter {
		return fmt.Errorf("consumer %s: event at %s/%d@%d failed %d attempts: %w", c.cfg.Name, m.Topic, m.Partition, m.Offset, attempts, cause)
	}
	topic := changefeed.DeadLetterTopic(m.Topic)
	msg := kafka.Message{
		Topic: topic,
		Key:   m.Key,
		Value: m.Value,
		Headers: append(append([]kafka.Header(nil), m.Headers...),
			kafka.Header{Key: HeaderDLQError, Value: []byte(truncate(cause.Error(), 4000))},
			kafka.Header{Key: HeaderDLQTopic, Value: []byte(m.Topic)},
			kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(m.Partition))},
			kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
			kafka.Header{Key: HeaderDLQConsumer, Value: []byte(c.cfg.Name)},
			kafka.Header{Key: HeaderDLQAttempts, Value: []byte(strconv.Itoa(attempts))},
			kafka.Header{Key: HeaderDLQFailedAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
		),
	}
	bo := retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := c.topics.Ensure(ctx, topic)
		if err == nil {
			err = c.dlq.WriteMessages(ctx, msg)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("consumer dead-letter write failed; retrying", "topic", topic, "error", err)
		if !retry.Sleep(ctx, bo.Next()) {
			return ctx.Err()
		}
	}
	c.m.deadLetters.WithLabelValues(m.Topic).Inc()
	c.log.Warn("event dead-lettered", "event", it.ev.ID, "type", it.ev.Type, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "attempts", attempts, "error", cause)
	return nil
}

// commit commits the offsets of items and updates the lag gauges. A failed
// commit is logged, not fatal: the events come again and the inbox skips
// them.
func (c *Consumer) commit(ctx context.Context, r *kafka.Reader, items []item) {
	msgs := make([]kafka.Message, len(items))
	for i := range items {
		msgs[i] = items[i].msg
	}
	// The events are applied: commit their offsets even if the consumer is
	// stopping, so that a clean stop redelivers nothing. A broker that does
	// not answer in time only causes redeliveries.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.CommitMessages(cctx, msgs...); err != nil {
		if ctx.Err() == nil {
			c.m.commitErrors.Inc()
			c.log.Warn("consumer offset commit failed; the events will come again", "error", err)
		}
		return
	}
	last := map[string]kafka.Message{}
	for _, m := range msgs {
		k := m.Topic + "/" + strconv.Itoa(m.Partition)
		if prev, ok := last[k]; !ok || m.Offset > prev.Offset {
			last[k] = m
		}
	}
	for _, m := range last {
		c.m.lag.WithLabelValues(m.Topic, strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
