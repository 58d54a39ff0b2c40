package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

const prefix = "rt"

// startRelay runs a relay until the test ends and returns it.
func startRelay(t *testing.T, gdb *gorm.DB, b *changefeedtest.Broker, cfg relay.Config, reg prometheus.Registerer) (*relay.Relay, context.CancelFunc) {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	r, err := relay.New(cfg, relay.Options{
		DB: gdb, Brokers: b.Brokers(), Registerer: reg,
		Kafka:  changefeed.KafkaConfig{TopicPrefix: prefix, Partitions: 3},
		Logger: changefeedtest.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return r, stop
}

type payload struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

// write adds one event per n in ns for key, in one transaction.
func write(t *testing.T, gdb *gorm.DB, aggType, key string, ns ...int) {
	t.Helper()
	err := db.Transact(context.Background(), gdb, func(ctx context.Context) error {
		for _, n := range ns {
			ev, err := changefeed.NewEvent(aggType, key, aggType+".changed", payload{key, n})
			if err != nil {
				return err
			}
			ev.Source = "test"
			if err := outbox.AddContext(ctx, gdb, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sequences decodes the n field of each message per key.
func sequences(t *testing.T, msgs []kafka.Message) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, m := range msgs {
		var p payload
		if err := json.Unmarshal(m.Value, &p); err != nil {
			t.Fatalf("payload %q: %v", m.Value, err)
		}
		out[string(m.Key)] = append(out[string(m.Key)], p.N)
	}
	return out
}

func ascending(ns []int) bool {
	for i := 1; i < len(ns); i++ {
		if ns[i] <= ns[i-1] {
			return false
		}
	}
	return true
}

func TestRelayPublishesInOrder(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		b := changefeedtest.NewBroker(t)
		reg := prometheus.NewRegistry()
		// Writers run while the relay publishes, several at once on
		// Postgres, so that transactions overlap.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					key := fmt.Sprintf("k%d", (w*25+i)%10)
					write(t, gdb, "item", key, 2*(w*1000+i), 2*(w*1000+i)+1)
				}
			}()
		}
		r, _ := startRelay(t, gdb, b, relay.Config{Name: "main", BatchSize: 64}, reg)
		wg.Wait()
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			return r.Published() >= 200, fmt.Sprintf("published %d of 200", r.Published())
		})
		msgs := changefeedtest.ReadTopic(t, b.Addr(), prefix+".item")
		if len(msgs) != 200 {
			t.Fatalf("topic holds %d messages, want 200", len(msgs))
		}
		if _, dups := changefeedtest.IDs(msgs); len(dups) > 0 {
			t.Fatalf("duplicates: %v", dups)
		}
		// A key's events keep the order their transactions committed in:
		// on both engines that is the order of their sequence numbers (on
		// Postgres the outbox trigger's per-aggregate lock makes it so).
		// Keys are shared by the writers; each writer's events of a key are
		// in increasing n.
		seqOf := map[string]int64{}
		rs, err := gdb.Raw("SELECT id, seq FROM outbox").Rows()
		changefeedtest.Must(t, err)
		for rs.Next() {
			var id string
			var seq int64
			changefeedtest.Must(t, rs.Scan(&id, &seq))
			seqOf[id] = seq
		}
		changefeedtest.Must(t, rs.Close())
		lastSeq := map[string]int64{}
		for _, m := range msgs {
			id := changefeedtest.Header(m, "id")
			if seqOf[id] <= lastSeq[string(m.Key)] {
				t.Fatalf("key %s: seq %d published after seq %d", m.Key, seqOf[id], lastSeq[string(m.Key)])
			}
			lastSeq[string(m.Key)] = seqOf[id]
		}
		for key, ns := range sequences(t, msgs) {
			byWriter := map[int][]int{}
			for _, n := range ns {
				byWriter[n/2000] = append(byWriter[n/2000], n)
			}
			for w, wn := range byWriter {
				if !ascending(wn) {
					t.Errorf("key %s, writer %d out of order: %v", key, w, wn)
				}
			}
		}
		// The envelope survives the trip.
		ev, err := changefeed.FromMessage(prefix, msgs[0])
		if err != nil {
			t.Fatal(err)
		}
		if ev.Source != "test" || ev.AggregateType != "item" || ev.Type != "item.changed" || ev.Version() != 1 ||
			ev.OccurredAt.IsZero() || ev.TraceParent == "" || ev.Origin != "test" || ev.ID.Version() != 7 {
			t.Fatalf("decoded envelope %+v", ev)
		}
		if got := changefeedtest.Sum(t, reg, "changefeed_relay_published_total"); got != 200 {
			t.Errorf("changefeed_relay_published_total = %v, want 200", got)
		}
		changefeedtest.Eventually(t, 30*time.Second, func() (bool, string) {
			g := changefeedtest.Sum(t, reg, "changefeed_outbox_backlog")
			return g == 0, fmt.Sprintf("backlog gauge %v", g)
		})
	})
}

// TestRelayOverlappingTransactions is the BIGSERIAL trap: a transaction
// that drew a low sequence number commits after one with a higher number.
// The relay must publish both, and never a key's events out of order.
func TestRelayOverlappingTransactions(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
	b := changefeedtest.NewBroker(t)
	r, _ := startRelay(t, gdb, b, relay.Config{Name: "main"}, nil)
	ctx := context.Background()

	// A opens first and writes key k1: it holds the lowest seq.
	txA := gdb.Begin()
	changefeedtest.Must(t, txA.Error)
	addTx(t, txA, "k1", 1)

	// B writes k2 and commits: its higher seq becomes visible first.
	write(t, gdb, "item", "k2", 1)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() >= 1, "B's event not published while A is open"
	})
	if r.Published() != 1 {
		t.Fatalf("published %d events while only B committed", r.Published())
	}

	// C writes k1 too: it must wait for A, since A holds k1's lock.
	cDone := make(chan error, 1)
	go func() {
		cDone <- db.Transact(ctx, gdb, func(ctx context.Context) error {
			ev, _ := changefeed.NewEvent("item", "k1", "item.changed", payload{"k1", 2})
			ev.Source = "test"
			return outbox.AddContext(ctx, gdb, ev)
		})
	}()
	select {
	case err := <-cDone:
		t.Fatalf("C committed (%v) while A held k1's lock", err)
	case <-time.After(300 * time.Millisecond):
	}

	// D writes k3 and rolls back: its seq is a gap that never fills.
	txD := gdb.Begin()
	addTx(t, txD, "k3", 1)
	changefeedtest.Must(t, txD.Rollback().Error)

	changefeedtest.Must(t, txA.Commit().Error)
	changefeedtest.Must(t, <-cDone)
	write(t, gdb, "item", "k4", 1)

	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() >= 4, fmt.Sprintf("published %d of 4", r.Published())
	})
	msgs := changefeedtest.ReadTopic(t, b.Addr(), prefix+".item")
	seqs := sequences(t, msgs)
	if fmt.Sprint(seqs["k1"]) != "[1 2]" || fmt.Sprint(seqs["k2"]) != "[1]" || fmt.Sprint(seqs["k4"]) != "[1]" || len(seqs["k3"]) != 0 {
		t.Fatalf("published %v, want k1 [1 2], k2 [1], k4 [1], no k3", seqs)
	}
	// The rolled-back gap is closed once every transaction that could have
	// filled it has ended.
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		var gaps string
		changefeedtest.Must(t, gdb.Raw("SELECT gaps FROM outbox_relay WHERE name = 'main'").Scan(&gaps).Error)
		return gaps == "[]", "open gaps: " + gaps
	})
}

// TestRelayCommitsBetweenItsReads commits a gap's event and a later event
// of the same aggregate while the relay is between its two reads of a
// cycle, the rows above its position and the rows in its gaps. Each read
// is its own statement with its own snapshot, so the relay must read the
// rows above its position first: a later event it sees there then has its
// earlier ones committed too, and the gap read that follows finds them.
// The relay read the gaps first and published k1's second event before its
// first.
func TestRelayCommitsBetweenItsReads(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
	b := changefeedtest.NewBroker(t)
	var position atomic.Int64
	position.Store(-1)
	bl := newBlocker(t, gdb, func(sql string, vars []any) bool {
		return strings.Contains(sql, "FROM outbox WHERE seq > ") && strings.Contains(sql, "ORDER BY seq LIMIT") &&
			len(vars) == 2 && vars[0] == position.Load()
	})
	bl.armed.Store(true)
	r, _ := startRelay(t, gdb, b, relay.Config{Name: "main"}, nil)

	// A holds the lowest seq, for k1; B commits k2 above it.
	txA := gdb.Begin()
	changefeedtest.Must(t, txA.Error)
	addTx(t, txA, "k1", 1)
	write(t, gdb, "item", "k2", 1)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == 1, fmt.Sprintf("published %d, want B's event", r.Published())
	})
	// The relay's next read above B's seq is held while A and then C, a
	// second event of k1, commit.
	position.Store(r.Position())
	select {
	case <-bl.entered:
	case <-time.After(time.Minute):
		t.Fatal("the relay never read above B's event")
	}
	changefeedtest.Must(t, txA.Commit().Error)
	write(t, gdb, "item", "k1", 2)
	bl.armed.Store(false)
	close(bl.release)

	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() >= 3, fmt.Sprintf("published %d of 3", r.Published())
	})
	seqs := sequences(t, changefeedtest.ReadTopic(t, b.Addr(), prefix+".item"))
	if fmt.Sprint(seqs["k1"]) != "[1 2]" || fmt.Sprint(seqs["k2"]) != "[1]" {
		t.Fatalf("published %v, want k1 [1 2], k2 [1]", seqs)
	}
}

// TestRelayReadsEveryGap keeps more gaps open than one gap query looks at
// (a long transaction holds them open: any of them could still fill), and
// then commits an event in the newest gap and a later event of its
// aggregate. The relay read only the first 200 gaps and published the later
// event first, with the earlier one waiting for the old gaps to close.
func TestRelayReadsEveryGap(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
	b := changefeedtest.NewBroker(t)
	r, _ := startRelay(t, gdb, b, relay.Config{Name: "main"}, nil)

	// L has an xid and stays open, so no gap below it can be given up.
	txL := gdb.Begin()
	changefeedtest.Must(t, txL.Exec("SELECT pg_current_xact_id()").Error)
	defer txL.Rollback()
	const gaps = 210
	for i := range gaps {
		tx := gdb.Begin()
		addTx(t, tx, "rolled-back", i)
		changefeedtest.Must(t, tx.Rollback().Error)
		write(t, gdb, "filler", fmt.Sprintf("f%d", i), 1)
	}
	txA := gdb.Begin()
	changefeedtest.Must(t, txA.Error)
	addTx(t, txA, "k1", 1)
	write(t, gdb, "item", "k2", 1)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == gaps+1, fmt.Sprintf("published %d of %d", r.Published(), gaps+1)
	})
	changefeedtest.Must(t, txA.Commit().Error)
	write(t, gdb, "item", "k1", 2)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() >= gaps+3, fmt.Sprintf("published %d of %d", r.Published(), gaps+3)
	})
	seqs := sequences(t, changefeedtest.ReadTopic(t, b.Addr(), prefix+".item"))
	if fmt.Sprint(seqs["k1"]) != "[1 2]" || fmt.Sprint(seqs["k2"]) != "[1]" {
		t.Fatalf("published %v, want k1 [1 2], k2 [1]", seqs)
	}
}

func addTx(t *testing.T, tx *gorm.DB, key string, n int) {
	t.Helper()
	ev, err := changefeed.NewEvent("item", key, "item.changed", payload{key, n})
	changefeedtest.Must(t, err)
	ev.Source = "test"
	changefeedtest.Must(t, outbox.Add(tx, ev))
}

// TestTwoRelays runs two relays of one group side by side while events are
// written: every event is published exactly once.
func TestTwoRelays(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		b := changefeedtest.NewBroker(t)
		cfg := relay.Config{Name: "pair", BatchSize: 50, LeaseTTL: 2 * time.Second}
		r1, _ := startRelay(t, gdb, b, cfg, nil)
		r2, _ := startRelay(t, gdb, b, cfg, nil)
		for i := range 100 {
			write(t, gdb, "item", fmt.Sprintf("k%d", i%7), 2*i, 2*i+1)
			if i%10 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			n := r1.Published() + r2.Published()
			return n >= 200, fmt.Sprintf("published %d of 200", n)
		})
		// Give a misbehaving second relay time to publish again.
		time.Sleep(500 * time.Millisecond)
		msgs := changefeedtest.ReadTopic(t, b.Addr(), prefix+".item")
		ids, dups := changefeedtest.IDs(msgs)
		if len(dups) > 0 || len(ids) != 200 || len(msgs) != 200 {
			t.Fatalf("%d messages, %d distinct, duplicates %v", len(msgs), len(ids), dups)
		}
		if r1.Leading() == r2.Leading() {
			t.Fatalf("leading: r1 %v, r2 %v; want exactly one", r1.Leading(), r2.Leading())
		}
	})
}

func TestRetention(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		b := changefeedtest.NewBroker(t)
		count := func() int64 {
			var n int64
			changefeedtest.Must(t, gdb.Raw("SELECT COUNT(*) FROM outbox").Scan(&n).Error)
			return n
		}
		// A second group that never runs holds the outbox back.
		changefeedtest.Must(t, gdb.Exec("INSERT INTO outbox_relay (name, position) VALUES ('lagging', 0)").Error)
		for i := range 20 {
			write(t, gdb, "item", "k", i)
		}
		r, _ := startRelay(t, gdb, b, relay.Config{Name: "main", Retention: time.Second, CleanupInterval: 100 * time.Millisecond}, nil)
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			return r.Published() == 20, fmt.Sprintf("published %d of 20", r.Published())
		})
		time.Sleep(1500 * time.Millisecond)
		if n := count(); n != 20 {
			t.Fatalf("outbox holds %d rows while a group has not published them, want 20", n)
		}
		changefeedtest.Must(t, gdb.Exec("DELETE FROM outbox_relay WHERE name = 'lagging'").Error)
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			n := count()
			return n == 0, fmt.Sprintf("outbox holds %d published rows past the retention", n)
		})
		// Sequence numbers are never reused after the table empties, so the
		// relay sees the next event.
		write(t, gdb, "item", "k", 100)
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			return r.Published() == 21, fmt.Sprintf("published %d of 21", r.Published())
		})
	})
}
