package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db/dbtest"
)

const topic = "ct.product"

// header builds a Kafka header.
func header(k, v string) kafka.Header { return kafka.Header{Key: k, Value: []byte(v)} }

// produce writes raw messages, as any producer (Debezium, another service)
// could.
func produce(t *testing.T, addr string, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topics := changefeed.NewTopics([]string{addr}, 1, 0, nil)
	changefeedtest.Must(t, topics.Ensure(ctx, topic))
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, AllowAutoTopicCreation: true}
	defer w.Close()
	changefeedtest.Must(t, w.WriteMessages(ctx, msgs...))
}

func event(typ string, version int, payload string, extra ...kafka.Header) kafka.Message {
	h := []kafka.Header{
		header("id", uuid.Must(uuid.NewV7()).String()),
		header("type", typ),
		header("schema_version", fmt.Sprint(version)),
		header("source", "test"),
		header("occurred_at", time.Now().UTC().Format(time.RFC3339Nano)),
	}
	return kafka.Message{Key: []byte("p1"), Value: []byte(payload), Headers: append(h, extra...)}
}

type seen struct {
	mu     sync.Mutex
	events []string
}

func (s *seen) add(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *seen) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

func start(t *testing.T, c *consumer.Consumer) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel
}

// TestTolerantReader feeds the consumer what a tolerant reader must take:
// unknown payload fields, unknown event types, older schema versions with
// upcasters, newer ones, ignored origins, Debezium-style headers, and a
// malformed message.
func TestTolerantReader(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		b := changefeedtest.NewBroker(t)
		gdb := changefeedtest.Open(t, dsn, consumer.Migrations())
		reg := prometheus.NewRegistry()
		c, err := consumer.New(consumer.Config{Name: "tolerant", Topics: []string{topic}, IgnoreOrigins: []string{"self"}, MaxWait: 100 * time.Millisecond, SessionTimeout: 3 * time.Second},
			consumer.Options{DB: gdb, Brokers: b.Brokers(), Kafka: changefeed.KafkaConfig{TopicPrefix: "ct"}, Registerer: reg, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		var got seen
		type productV3 struct {
			Name       string `json:"name"`
			PriceCents int    `json:"price_cents"`
		}
		c.Handle("product.changed", 3, func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
			var p productV3
			if err := ev.Decode(&p); err != nil {
				return err
			}
			if tx == nil || ev.AggregateType != "product" || ev.AggregateID != "p1" {
				return fmt.Errorf("bad envelope %+v", ev)
			}
			got.add(fmt.Sprintf("%s:%d:%d", p.Name, p.PriceCents, ev.SchemaVersion))
			return nil
		})
		// v1 had price in whole units, v2 renamed title to name.
		c.Upcast("product.changed", 1, func(p json.RawMessage) (json.RawMessage, error) {
			var v1 struct {
				Title string `json:"title"`
				Price int    `json:"price"`
			}
			if err := json.Unmarshal(p, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{"title": v1.Title, "price_cents": v1.Price * 100})
		})
		c.Upcast("product.changed", 2, func(p json.RawMessage) (json.RawMessage, error) {
			var v2 map[string]any
			if err := json.Unmarshal(p, &v2); err != nil {
				return nil, err
			}
			v2["name"] = v2["title"]
			delete(v2, "title")
			return json.Marshal(v2)
		})
		start(t, c)

		debezium := event("product.changed", 3, `{"name":"dbz","price_cents":5}`)
		for i, h := range debezium.Headers {
			switch h.Key {
			case "id":
				// Kafka Connect's JsonConverter quotes string headers.
				debezium.Headers[i].Value = []byte(`"` + string(h.Value) + `"`)
			case "occurred_at":
				// Debezium's MicroTimestamp.
				debezium.Headers[i].Value = []byte(fmt.Sprint(time.Now().UnixMicro()))
			}
		}
		produce(t, b.Addr(),
			event("product.changed", 3, `{"name":"current","price_cents":1,"colour":"unknown field"}`),
			event("product.renamed", 1, `{}`),
			event("product.changed", 1, `{"title":"old","price":2}`),
			event("product.changed", 2, `{"title":"middle","price_cents":3}`),
			event("product.changed", 4, `{"name":"future","price_cents":4,"tags":["new"]}`),
			event("product.changed", 3, `{"name":"echo","price_cents":9}`, header("origin", "self")),
			debezium,
			kafka.Message{Key: []byte("p1"), Value: []byte(`{}`), Headers: []kafka.Header{header("type", "product.changed")}},
			event("product.changed", 3, `{"name":"last","price_cents":6}`),
		)
		want := "[current:1:3 old:200:3 middle:3:3 future:4:4 dbz:5:3 last:6:3]"
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			l := got.list()
			return fmt.Sprint(l) == want, fmt.Sprintf("handled %v, want %s", l, want)
		})
		checks := map[string]float64{
			"changefeed_consumer_skipped_total":       2, // unknown type, ignored origin
			"changefeed_consumer_upcast_total":        2,
			"changefeed_consumer_newer_version_total": 1,
			"changefeed_consumer_dead_letters_total":  1, // the message without an id
			"changefeed_consumer_handled_total":       6,
			"changefeed_event_e2e_latency_seconds":    6,
		}
		changefeedtest.Eventually(t, 30*time.Second, func() (bool, string) {
			for name, want := range checks {
				if got := changefeedtest.Sum(t, reg, name); got != want {
					return false, fmt.Sprintf("%s = %v, want %v", name, got, want)
				}
			}
			return true, ""
		})
		dlq := changefeedtest.ReadTopic(t, b.Addr(), topic+".dlq")
		if len(dlq) != 1 || !strings.Contains(changefeedtest.Header(dlq[0], consumer.HeaderDLQError), "no id header") {
			t.Fatalf("dead letters: %v", dlq)
		}
	})
}

// TestUpcastMissing sends an event whose schema version has no upcaster to
// the dead-letter topic at once: retrying cannot help.
func TestUpcastMissing(t *testing.T) {
	b := changefeedtest.NewBroker(t)
	gdb := changefeedtest.Open(t, dbtest.SQLiteDSN(t), consumer.Migrations())
	reg := prometheus.NewRegistry()
	c, err := consumer.New(consumer.Config{Name: "strict", Topics: []string{topic}, MaxWait: 100 * time.Millisecond, SessionTimeout: 3 * time.Second},
		consumer.Options{DB: gdb, Brokers: b.Brokers(), Registerer: reg, Logger: changefeedtest.Logger()})
	changefeedtest.Must(t, err)
	var calls seen
	c.Handle("product.changed", 2, func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
		calls.add(string(ev.Payload))
		return nil
	})
	start(t, c)
	produce(t, b.Addr(), event("product.changed", 1, `{"a":1}`), event("product.changed", 2, `{"a":2}`))
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return len(calls.list()) == 1 && changefeedtest.Sum(t, reg, "changefeed_consumer_dead_letters_total") == 1,
			fmt.Sprintf("handled %v", calls.list())
	})
	if n := changefeedtest.Sum(t, reg, "changefeed_consumer_retries_total"); n != 0 {
		t.Fatalf("retries = %v, want none for a permanent failure", n)
	}
}

// TestPermanentAndPanics: a handler's Permanent error skips the retries, a
// panic is an error like any other, and without dead-lettering a poison
// event stops the consumer with its cause.
func TestPermanentAndPanics(t *testing.T) {
	b := changefeedtest.NewBroker(t)
	gdb := changefeedtest.Open(t, dbtest.SQLiteDSN(t), consumer.Migrations())
	reg := prometheus.NewRegistry()
	c, err := consumer.New(consumer.Config{Name: "p", Topics: []string{topic}, MaxAttempts: 2, RetryBackoff: time.Millisecond, MaxWait: 100 * time.Millisecond, SessionTimeout: 3 * time.Second},
		consumer.Options{DB: gdb, Brokers: b.Brokers(), Registerer: reg, Logger: changefeedtest.Logger()})
	changefeedtest.Must(t, err)
	c.Handle("a", 1, func(context.Context, *gorm.DB, changefeed.Event) error {
		return consumer.Permanent(errors.New("bad data"))
	})
	c.Handle("b", 1, func(context.Context, *gorm.DB, changefeed.Event) error { panic("boom") })
	start(t, c)
	produce(t, b.Addr(), event("a", 1, `{}`), event("b", 1, `{}`))
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		n := changefeedtest.Sum(t, reg, "changefeed_consumer_dead_letters_total")
		return n == 2, fmt.Sprintf("dead letters %v, want 2", n)
	})
	if n := changefeedtest.Sum(t, reg, "changefeed_consumer_retries_total"); n != 1 {
		t.Fatalf("retries = %v, want 1 (the panicking handler's second attempt)", n)
	}
	dlq := changefeedtest.ReadTopic(t, b.Addr(), topic+".dlq")
	errs := map[string]string{}
	for _, m := range dlq {
		errs[changefeedtest.Header(m, "type")] = changefeedtest.Header(m, consumer.HeaderDLQError) + " after " + changefeedtest.Header(m, consumer.HeaderDLQAttempts)
	}
	if len(dlq) != 2 || errs["a"] != "permanent failure: bad data after 1" || errs["b"] != "handler panicked: boom after 2" {
		t.Fatalf("dead letters: %v", errs)
	}

	// Without a dead-letter topic the consumer stops.
	off := false
	c2, err := consumer.New(consumer.Config{Name: "stops", Topics: []string{topic}, MaxAttempts: 1, DeadLetter: &off, MaxWait: 100 * time.Millisecond, SessionTimeout: 3 * time.Second},
		consumer.Options{DB: gdb, Brokers: b.Brokers(), Logger: changefeedtest.Logger()})
	changefeedtest.Must(t, err)
	c2.HandleOther(1, func(context.Context, *gorm.DB, changefeed.Event) error { return errors.New("nope") })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c2.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "failed 1 attempts: nope") {
		t.Fatalf("Run = %v, want the poison event's failure", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  consumer.Config
		want string
	}{
		{"ok", consumer.Config{Name: "svc", Topics: []string{"t"}}, ""},
		{"no name", consumer.Config{Topics: []string{"t"}}, "name:"},
		{"bad name", consumer.Config{Name: "a b", Topics: []string{"t"}}, "name:"},
		{"no topics", consumer.Config{Name: "svc"}, "topics:"},
		{"attempts", consumer.Config{Name: "svc", Topics: []string{"t"}, MaxAttempts: -1}, "max_attempts:"},
		{"batch", consumer.Config{Name: "svc", Topics: []string{"t"}, MaxBatch: 20000}, "max_batch:"},
		{"backoff", consumer.Config{Name: "svc", Topics: []string{"t"}, RetryBackoff: time.Second, RetryBackoffMax: time.Millisecond}, "retry_backoff:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.SetDefaults()
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
