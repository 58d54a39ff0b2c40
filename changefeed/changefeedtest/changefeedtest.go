// Package changefeedtest gives change-data tests real parts: an embedded
// broker on a free loopback port that can be stopped and restarted on the
// same address and data, databases with the outbox and inbox migrated, a
// reader that drains a topic, and a small order application whose writes
// and events go through the outbox in one transaction.
package changefeedtest

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/broker"
	"github.com/stranglerkit/strangler/db"
)

// Logger returns a logger for components under test: silent unless
// STRANGLER_TEST_LOG is set, in which case it writes text to stderr at debug
// level.
func Logger() *slog.Logger {
	if os.Getenv("STRANGLER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Broker is an embedded broker that a test can stop and start again on the
// same address with the same data, as a broker outage would.
type Broker struct {
	t    testing.TB
	dir  string
	addr string

	mu sync.Mutex
	// stop ends the running broker's Run, and done is closed when it has
	// returned; both nil while the broker is stopped.
	stop context.CancelFunc
	done chan struct{}
}

// NewBroker starts a broker on a free port of 127.0.0.1 with its data in a
// temporary directory. It stops when the test ends.
func NewBroker(t testing.TB) *Broker {
	t.Helper()
	tb := &Broker{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	tb.Start()
	t.Cleanup(tb.Stop)
	return tb
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// Brokers is Addr as a bootstrap list.
func (b *Broker) Brokers() []string { return []string{b.Addr()} }

// Start starts the broker if it is stopped, on the address it had, and
// returns once it listens.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		return
	}
	// The port may linger for a moment after a stop; retry for a while.
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err = b.start(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("start broker: %v", err)
	}
}

// start runs a broker until Stop and waits until it listens or fails.
func (b *Broker) start() error {
	br, err := broker.New(broker.Config{Addr: b.addr, Dir: b.dir, Partitions: 3}, Logger().With("component", "broker"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = br.Run(ctx)
	}()
	select {
	case <-br.Started():
	case <-done:
		cancel()
		return runErr
	}
	b.stop, b.done, b.addr = cancel, done, br.Addr()
	return nil
}

// Stop stops the broker, keeping its data, and returns once it has stopped.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		b.stop()
		<-b.done
		b.stop, b.done = nil, nil
	}
}

// Open opens dsn, migrates the given sets into it and closes it when the
// test ends.
func Open(t testing.TB, dsn string, sets ...db.Migrations) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	if err := db.MigrateUp(ctx, dsn, sets...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close(gdb) })
	return gdb
}

// ReadTopic returns every message in topic, partition by partition, up to
// the high watermarks at the time of the call.
func ReadTopic(t testing.TB, addr, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("read topic %s: %v", topic, err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("read topic %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		out = append(out, readPartition(ctx, t, addr, topic, p.ID)...)
	}
	return out
}

func readPartition(ctx context.Context, t testing.TB, addr, topic string, partition int) []kafka.Message {
	t.Helper()
	leader, err := kafka.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		t.Fatalf("read %s/%d: %v", topic, partition, err)
	}
	first, last, err := leader.ReadOffsets()
	leader.Close()
	if err != nil {
		t.Fatalf("read %s/%d offsets: %v", topic, partition, err)
	}
	if last <= first {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: partition, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		t.Fatalf("read %s/%d: %v", topic, partition, err)
	}
	var out []kafka.Message
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s/%d at %d of %d: %v", topic, partition, len(out), last-first, err)
		}
		out = append(out, m)
		if m.Offset >= last-1 {
			return out
		}
	}
}

// Eventually polls cond every 50ms until it returns true or timeout passes,
// then fails the test with cond's last message. Tests use generous timeouts:
// they run on loaded machines.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Header returns the value of header key in m.
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ByKey groups message values by key, keeping each key's order.
func ByKey(msgs []kafka.Message) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		out[string(m.Key)] = append(out[string(m.Key)], string(m.Value))
	}
	return out
}

// IDs returns the event ids (id header) of msgs, sorted, and those that
// occur more than once.
func IDs(msgs []kafka.Message) (ids []string, dups []string) {
	seen := map[string]int{}
	for _, m := range msgs {
		id := Header(m, "id")
		seen[id]++
		if seen[id] == 2 {
			dups = append(dups, id)
		}
	}
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, dups
}

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Sum adds up every series of the counter or gauge family name in reg, or
// the sample counts of a histogram family.
func Sum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return total
}
