package changefeed_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
)

// TestGroupLag: the lag of a group is what it has not committed: all of a
// topic before it reads, less as it commits, zero when it caught up, and
// zero for a topic nobody published to.
func TestGroupLag(t *testing.T) {
	b := changefeedtest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const topic = "lag.test"
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: topic, AllowAutoTopicCreation: true, BatchTimeout: time.Millisecond}
	defer w.Close()
	for i := 0; i < 10; i++ {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte{byte('a' + i%3)}, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	lag := func(topics ...string) int64 {
		t.Helper()
		n, err := changefeed.GroupLag(ctx, b.Brokers(), "g1", topics)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := lag(topic); n != 10 {
		t.Fatalf("before reading: lag %d, want 10", n)
	}
	if n := lag("lag.nothing-published"); n != 0 {
		t.Fatalf("unknown topic: lag %d", n)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Brokers(), GroupID: "g1", Topic: topic, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	for i := 0; i < 4; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := lag(topic); n >= 10 || n < 1 {
		t.Fatalf("after 4 commits: lag %d", n)
	}
	for i := 4; i < 10; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := lag(topic); n != 0 {
		t.Fatalf("caught up: lag %d", n)
	}
}
