package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/broker"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/internal/private"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start runs a broker on cfg until the returned stop, which waits for Run
// to return; the test's end stops it too.
func start(t *testing.T, cfg broker.Config) (b *broker.Broker, stop func()) {
	t.Helper()
	b, err := broker.New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	cancel, done := lifecycletest.Start(t, b)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("broker Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return b, stop
}

// TestKafkaGoAgainstBroker checks what the relay and the consumers rely on,
// with kafka-go over TCP: topic creation with a partition count, keyed
// writes with acks from all replicas, consumer groups with explicit commits,
// and that all of it, log and committed offsets, survives a restart.
func TestKafkaGoAgainstBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	b, stop := start(t, broker.Config{Addr: "127.0.0.1:0", Dir: dir})
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

	stop()
	start(t, broker.Config{Addr: addr, Dir: dir})

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

// TestLifecycle checks the lifecycle rule (lifecycletest.Check) on the
// broker, which also leaves its data dir alone until Run.
func TestLifecycle(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T, addr string) (lifecycletest.Component, string) {
		dir := filepath.Join(t.TempDir(), "broker")
		b, err := broker.New(broker.Config{Addr: addr, Dir: dir}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("New made the data dir: %v", err)
		}
		return b, filepath.Dir(dir)
	}, "kfake")
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
	b, stop := start(t, broker.Config{Addr: "127.0.0.1:0", Dir: dir})

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
	files, loose, err := private.Loose(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(loose) > 0 || len(files) == 0 {
		t.Fatalf("after the broker stopped, %d files and these modes are loose: %s", len(files), strings.Join(loose, ", "))
	}
}
