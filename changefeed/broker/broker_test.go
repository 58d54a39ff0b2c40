package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/broker"
	"github.com/stranglerkit/strangler/internal/private"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKafkaGoAgainstBroker checks what the relay and the consumers rely on,
// with kafka-go over TCP: topic creation with a partition count, keyed
// writes with acks from all replicas, consumer groups with explicit commits,
// and that all of it, log and committed offsets, survives a restart.
func TestKafkaGoAgainstBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	b := start(t, broker.Config{Addr: "127.0.0.1:0", Dir: dir})
	addr := b.Addr()

	topics := changefeed.NewTopics([]string{addr}, 3, 0, nil)
	if err := topics.Ensure(ctx, "t.orders"); err != nil {
		t.Fatal(err)
	}
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions("t.orders")
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("partitions = %d, want 3", len(parts))
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
	}
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Topic: "t.orders", Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// Consume half with a group, commit, and stop.
	read := func(n int) map[string][]string {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{addr}, GroupID: "g1", Topic: "t.orders",
			MaxWait: 100 * time.Millisecond, SessionTimeout: 6 * time.Second,
		})
		defer r.Close()
		got := map[string][]string{}
		for range n {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	first := read(15)

	b.Close()
	b = start(t, broker.Config{Addr: addr, Dir: dir})
	defer b.Close()

	second := read(15)
	// Every key's values arrive once, in the order written.
	for k := range 5 {
		key := fmt.Sprintf("k%d", k)
		all := append(append([]string(nil), first[key]...), second[key]...)
		var want []string
		for i := k; i < 30; i += 5 {
			want = append(want, fmt.Sprint(i))
		}
		if fmt.Sprint(all) != fmt.Sprint(want) {
			t.Errorf("key %s: got %v, want %v", key, all, want)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  broker.Config
		want string
	}{
		{"defaults", broker.Config{}, ""},
		{"bad addr", broker.Config{Addr: "nope"}, "addr:"},
		{"bad partitions", broker.Config{Partitions: -1}, "partitions:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.SetDefaults("/data")
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Addr != "127.0.0.1:9092" || cfg.Dir != "/data/broker" || cfg.Partitions != 6 {
					t.Fatalf("defaults = %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestBrokerLogIsPrivate runs the broker on a data directory an older
// version left at 0755, produces to a topic, and checks that the log's
// files become 0600 and its directories 0700 while it runs and after it
// stops: the log holds customer data.
func TestBrokerLogIsPrivate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "broker")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := start(t, broker.Config{Addr: "127.0.0.1:0", Dir: dir})
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	defer func() { stop(); <-ran }()

	if err := changefeed.NewTopics([]string{b.Addr()}, 2, 0, nil).Ensure(ctx, "t.private"); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond}
	if err := w.WriteMessages(ctx, kafka.Message{Topic: "t.private", Key: []byte("k"), Value: []byte("customer data")}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	for {
		files, loose, err := private.Loose(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(loose) == 0 && len(files) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("while the broker runs, %d files and these modes are loose: %s", len(files), strings.Join(loose, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}

	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	ran <- nil
	files, loose, err := private.Loose(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(loose) > 0 || len(files) == 0 {
		t.Fatalf("after the broker stopped, %d files and these modes are loose: %s", len(files), strings.Join(loose, ", "))
	}
}
