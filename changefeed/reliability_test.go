package changefeed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// The reliability tests run the whole path over real parts: an order
// application writing through the outbox (SQLite or Postgres), the relay,
// the embedded broker over TCP, and a consumer applying the events to a
// replica in a second database.

const prefix = "rel"

var kafkaCfg = changefeed.KafkaConfig{TopicPrefix: prefix, Partitions: 3}

type pipeline struct {
	t      *testing.T
	broker *changefeedtest.Broker
	src    *changefeedtest.Orders
	dst    *changefeedtest.Replica
	srcDB  *gorm.DB
	dstDB  *gorm.DB
}

// dialects runs fn with a source and a target database of each engine.
func dialects(t *testing.T, fn func(t *testing.T, p *pipeline)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, newPipeline(t, dbtest.SQLiteDSN(t), dbtest.SQLiteDSN(t)))
	})
	t.Run("postgres", func(t *testing.T) {
		src := dbtest.PostgresDSN(t)
		fn(t, newPipeline(t, src, dbtest.PostgresDSN(t)))
	})
}

func newPipeline(t *testing.T, srcDSN, dstDSN string) *pipeline {
	srcDB := changefeedtest.Open(t, srcDSN, outbox.Migrations())
	dstDB := changefeedtest.Open(t, dstDSN, consumer.Migrations())
	return &pipeline{
		t:      t,
		broker: changefeedtest.NewBroker(t),
		src:    changefeedtest.NewOrders(t, srcDB),
		dst:    changefeedtest.NewReplica(t, dstDB),
		srcDB:  srcDB,
		dstDB:  dstDB,
	}
}

func (p *pipeline) relay(cfg relay.Config) (*relay.Relay, func()) {
	p.t.Helper()
	if cfg.Name == "" {
		cfg.Name = "main"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	r, err := relay.New(cfg, relay.Options{DB: p.srcDB, Brokers: p.broker.Brokers(), Kafka: kafkaCfg, Logger: changefeedtest.Logger()})
	if err != nil {
		p.t.Fatal(err)
	}
	return r, changefeedtest.Go(p.t, "relay", r.Run)
}

func (p *pipeline) consumer(cfg consumer.Config, reg prometheus.Registerer, h consumer.Handler) (*consumer.Consumer, func()) {
	p.t.Helper()
	if cfg.Name == "" {
		cfg.Name = "replica"
	}
	cfg.Topics = []string{changefeed.Topic(prefix, "order")}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 3 * time.Second
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 100 * time.Millisecond
	}
	if h == nil {
		h = p.dst.Apply
	}
	c, err := consumer.New(cfg, consumer.Options{DB: p.dstDB, Brokers: p.broker.Brokers(), Kafka: kafkaCfg, Logger: changefeedtest.Logger(), Registerer: reg})
	if err != nil {
		p.t.Fatal(err)
	}
	c.Handle("order.placed", 1, h)
	c.Handle("order.changed", 1, h)
	return c, changefeedtest.Go(p.t, "consumer", c.Run)
}

// workload places orders and changes their status: each order gets
// 1+changes events, in order.
func (p *pipeline) workload(ctx context.Context, tag string, orders, changes int) error {
	for i := range orders {
		id := fmt.Sprintf("%s-%03d", tag, i)
		if err := p.src.Place(ctx, id, int64(100+i)); err != nil {
			return err
		}
	}
	for c := range changes {
		for i := range orders {
			id := fmt.Sprintf("%s-%03d", tag, i)
			if err := p.src.SetStatus(ctx, id, fmt.Sprintf("status-%d", c)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *pipeline) converged(timeout time.Duration) {
	p.t.Helper()
	changefeedtest.Eventually(p.t, timeout, func() (bool, string) {
		return changefeedtest.CheckConverged(p.t, p.src, p.dst)
	})
}

// topicInOrder checks that, duplicates aside, every key's versions appear in
// the topic in increasing order, and returns how many duplicates it holds.
func (p *pipeline) topicInOrder() int {
	p.t.Helper()
	msgs := changefeedtest.ReadTopic(p.t, p.broker.Addr(), changefeed.Topic(prefix, "order"))
	seen := map[string]bool{}
	last := map[string]int64{}
	dups := 0
	for _, m := range msgs {
		id := changefeedtest.Header(m, changefeed.HeaderID)
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		var st changefeedtest.OrderState
		if err := json.Unmarshal(m.Value, &st); err != nil {
			p.t.Fatal(err)
		}
		if st.Version != last[st.ID]+1 {
			p.t.Fatalf("order %s: version %d follows %d in the topic", st.ID, st.Version, last[st.ID])
		}
		last[st.ID] = st.Version
	}
	return dups
}

// TestBrokerOutage stops the broker for several seconds while orders are
// placed and changed. After it restarts every event arrives, none is lost,
// and each order's events are applied once, in order.
func TestBrokerOutage(t *testing.T) {
	dialects(t, func(t *testing.T, p *pipeline) {
		p.relay(relay.Config{BatchSize: 100})
		p.consumer(consumer.Config{}, nil, nil)

		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- p.workload(context.Background(), fmt.Sprintf("w%d", w), 20, 4)
			}()
		}
		// Let the first events through, then take the broker away while the
		// writers carry on.
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			return len(p.dst.State(t)) > 0, "no order replicated before the outage"
		})
		p.broker.Stop()
		time.Sleep(4 * time.Second)
		p.broker.Start()
		wg.Wait()
		close(errs)
		for err := range errs {
			changefeedtest.Must(t, err)
		}
		p.converged(2 * time.Minute)
		if got := len(p.src.State(t)); got != 60 {
			t.Fatalf("source holds %d orders, want 60", got)
		}
		p.topicInOrder()
	})
}

// TestRelayCrash kills the relay after a batch has reached the broker and
// before the relay recorded it, so its successor publishes that batch again.
// The consumer's inbox absorbs the duplicates: the final state is the same
// as that of a run without the crash.
func TestRelayCrash(t *testing.T) {
	dialects(t, func(t *testing.T, p *pipeline) {
		ctx := context.Background()
		// The reference run, without a crash, in a pipeline of its own.
		ref := newPipeline(t, fresh(t, p.srcDB), fresh(t, p.dstDB))
		changefeedtest.Must(t, ref.workload(ctx, "o", 40, 4))
		ref.relay(relay.Config{BatchSize: 50})
		ref.consumer(consumer.Config{}, nil, nil)
		ref.converged(2 * time.Minute)

		changefeedtest.Must(t, p.workload(ctx, "o", 40, 4))
		reg := prometheus.NewRegistry()
		p.consumer(consumer.Config{}, reg, nil)
		// Small batches that each wait out a long kafka-go batch timeout
		// keep the first relay busy for seconds, so that the lock below
		// catches it between publishing a batch and recording it.
		r1, kill := p.relay(relay.Config{Name: "crash", BatchSize: 10, BatchTimeout: 100 * time.Millisecond, LeaseTTL: time.Second})
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			return r1.Position() >= 10, fmt.Sprintf("relay position %d, want a first batch", r1.Position())
		})
		// Hold the relay's state row, as a stalled database would: the next
		// batch reaches the broker, but its position cannot be recorded.
		hold := changefeedtest.LockRelayRow(t, p.srcDB, "crash")
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			return r1.Published() > r1.Position(), fmt.Sprintf("published %d, recorded up to %d", r1.Published(), r1.Position())
		})
		kill()
		changefeedtest.Must(t, hold.Rollback().Error)

		// A new relay takes over once the dead one's lease has expired.
		p.relay(relay.Config{Name: "crash", BatchSize: 50, LeaseTTL: time.Second})
		p.converged(2 * time.Minute)

		if dups := p.topicInOrder(); dups == 0 {
			t.Fatal("the crash published no duplicate: the test did not crash mid-way")
		}
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			n := changefeedtest.Sum(t, reg, "changefeed_consumer_duplicates_total")
			return n > 0, "the consumer saw no duplicate"
		})
		if got, want := p.dst.State(t), ref.dst.State(t); !maps.Equal(got, want) {
			t.Fatalf("state after the crash differs from the run without:\n got %v\nwant %v", got, want)
		}
		if got, want := p.dst.Effects(t), ref.dst.Effects(t); !maps.Equal(got, want) {
			t.Fatalf("effects after the crash differ from the run without:\n got %v\nwant %v", got, want)
		}
	})
}

// fresh returns the DSN of a new database of gdb's engine.
func fresh(t *testing.T, gdb *gorm.DB) string {
	if gdb.Dialector.Name() == "postgres" {
		return dbtest.PostgresDSN(t)
	}
	return dbtest.SQLiteDSN(t)
}

// TestConsumerCrash loses the broker right after the consumer applied an
// event and before it committed the offset, then kills the consumer. The
// event is delivered again to its successor, and applied once.
func TestConsumerCrash(t *testing.T) {
	dialects(t, func(t *testing.T, p *pipeline) {
		ctx := context.Background()
		changefeedtest.Must(t, p.workload(ctx, "o", 10, 2))
		p.relay(relay.Config{})
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			msgs := changefeedtest.ReadTopic(t, p.broker.Addr(), changefeed.Topic(prefix, "order"))
			return len(msgs) == 30, fmt.Sprintf("%d of 30 events on the broker", len(msgs))
		})

		var applied atomic.Int64
		reg1 := prometheus.NewRegistry()
		c1, kill := p.consumer(consumer.Config{MaxBatch: 1}, reg1, func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
			if err := p.dst.Apply(ctx, tx, ev); err != nil {
				return err
			}
			if applied.Add(1) == 5 {
				// The fifth event's transaction commits after this returns,
				// but its offset cannot be committed any more.
				p.broker.Stop()
			}
			return nil
		})
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			n := changefeedtest.Sum(t, reg1, "changefeed_consumer_commit_errors_total")
			return n > 0, fmt.Sprintf("no failed offset commit yet (handled %d)", c1.Handled())
		})
		kill()
		p.broker.Start()

		reg2 := prometheus.NewRegistry()
		p.consumer(consumer.Config{}, reg2, nil)
		p.converged(2 * time.Minute)
		if n := changefeedtest.Sum(t, reg2, "changefeed_consumer_duplicates_total"); n < 1 {
			t.Fatalf("the successor saw %v redelivered events, want at least the one whose commit was lost", n)
		}
	})
}

// TestPoisonEvent sends an event that its handler always rejects to the
// dead-letter topic, with its error, while the partition carries on.
func TestPoisonEvent(t *testing.T) {
	dialects(t, func(t *testing.T, p *pipeline) {
		ctx := context.Background()
		changefeedtest.Must(t, p.workload(ctx, "o", 20, 2))
		p.relay(relay.Config{})
		reg := prometheus.NewRegistry()
		var tries atomic.Int64
		p.consumer(consumer.Config{MaxAttempts: 3, RetryBackoff: 10 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond}, reg,
			func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
				var st changefeedtest.OrderState
				if err := ev.Decode(&st); err != nil {
					return err
				}
				if st.ID == "o-007" && st.Version == 2 {
					tries.Add(1)
					return errors.New("cannot apply o-007 v2")
				}
				return p.dst.Apply(ctx, tx, ev)
			})
		// Every order but o-007 converges; o-007 stops at version 1, its
		// version 3 applied after the poisoned version 2 was set aside.
		changefeedtest.Eventually(t, 2*time.Minute, func() (bool, string) {
			eff := p.dst.Effects(t)
			for i := range 20 {
				id := fmt.Sprintf("o-%03d", i)
				want := int64(3)
				if id == "o-007" {
					want = 2
				}
				if eff[id] != want {
					return false, fmt.Sprintf("order %s: %d events applied, want %d", id, eff[id], want)
				}
			}
			return true, ""
		})
		if n := tries.Load(); n != 3 {
			t.Errorf("poison handled %d times, want 3 attempts", n)
		}
		if n := changefeedtest.Sum(t, reg, "changefeed_consumer_dead_letters_total"); n != 1 {
			t.Errorf("dead letters = %v, want 1", n)
		}
		// The order's last version overtook the poisoned one, as the replica
		// shows: the violation is the price of setting an event aside.
		if v := p.dst.Violations(t); len(v) != 1 || !strings.Contains(v[0], "o-007: version 3 applied on 1") {
			t.Errorf("violations = %v", v)
		}
		dlq := changefeedtest.ReadTopic(t, p.broker.Addr(), changefeed.DeadLetterTopic(changefeed.Topic(prefix, "order")))
		if len(dlq) != 1 {
			t.Fatalf("dead-letter topic holds %d messages, want 1", len(dlq))
		}
		m := dlq[0]
		if string(m.Key) != "o-007" || !strings.Contains(changefeedtest.Header(m, consumer.HeaderDLQError), "cannot apply o-007 v2") ||
			changefeedtest.Header(m, consumer.HeaderDLQAttempts) != "3" || changefeedtest.Header(m, consumer.HeaderDLQConsumer) != "replica" {
			t.Fatalf("dead letter key %q headers %v", m.Key, m.Headers)
		}
		// Other orders share o-007's partition and kept flowing.
		if !sharesPartition(t, "o-007", 20) {
			t.Fatal("no other order shares o-007's partition; pick more orders")
		}
	})
}

func sharesPartition(t *testing.T, key string, orders int) bool {
	h := &kafka.Hash{}
	parts := []int{0, 1, 2}
	p := h.Balance(kafka.Message{Key: []byte(key)}, parts...)
	for i := range orders {
		id := fmt.Sprintf("o-%03d", i)
		if id != key && h.Balance(kafka.Message{Key: []byte(id)}, parts...) == p {
			return true
		}
	}
	return false
}

// TestTwoRelaysEndToEnd runs two relays of one group while orders flow: the
// topic holds no duplicate and the consumer sees none.
func TestTwoRelaysEndToEnd(t *testing.T) {
	dialects(t, func(t *testing.T, p *pipeline) {
		reg := prometheus.NewRegistry()
		p.relay(relay.Config{BatchSize: 20, LeaseTTL: 2 * time.Second})
		p.relay(relay.Config{BatchSize: 20, LeaseTTL: 2 * time.Second})
		p.consumer(consumer.Config{}, reg, nil)
		changefeedtest.Must(t, p.workload(context.Background(), "o", 30, 3))
		p.converged(2 * time.Minute)
		if dups := p.topicInOrder(); dups != 0 {
			t.Fatalf("topic holds %d duplicates", dups)
		}
		if n := changefeedtest.Sum(t, reg, "changefeed_consumer_duplicates_total"); n != 0 {
			t.Fatalf("consumer saw %v duplicates", n)
		}
	})
}
