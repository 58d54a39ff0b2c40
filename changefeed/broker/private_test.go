package broker_test

import (
	"context"
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
