package changefeed_test

import (
	"context"
	"maps"
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

// TestCommittedOffsetsReachSpans: the end offsets of a topic's partitions,
// taken once, are reached by a group's committed offsets partition by
// partition: a group ahead on one partition is still behind on the other,
// and messages published after the spans were taken do not count.
func TestCommittedOffsetsReachSpans(t *testing.T) {
	b := changefeedtest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const topic, group = "spans.test", "g-spans"
	c := &kafka.Client{Addr: kafka.TCP(b.Addr()), Timeout: 5 * time.Second}
	created, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := created.Errors[topic]; err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: topic, Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0] - '0') }), BatchTimeout: time.Millisecond}
	defer w.Close()
	publish := func(partition byte, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte{'0' + partition}, Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 3)
	publish(1, 5)
	spans, err := changefeed.TopicSpans(ctx, b.Brokers(), []string{topic, "spans.nothing-published"})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := changefeed.TopicPartition{Topic: topic, Partition: 0}, changefeed.TopicPartition{Topic: topic, Partition: 1}
	if len(spans) != 2 || spans[p0] != (changefeed.Span{First: 0, End: 3}) || spans[p1] != (changefeed.Span{First: 0, End: 5}) {
		t.Fatalf("spans %v, want %s/0 at 0-3 and %s/1 at 0-5 and no other", spans, topic, topic)
	}
	publish(1, 4) // after the spans were taken
	commit := func(partition int, offset int64) {
		t.Helper()
		res, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: partition, Offset: offset}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Topics[topic] {
			if p.Error != nil {
				t.Fatal(p.Error)
			}
		}
	}
	for _, step := range []struct {
		partition int
		offset    int64
		committed map[changefeed.TopicPartition]int64
		behind    int64
	}{
		{-1, 0, map[changefeed.TopicPartition]int64{}, 8},
		{0, 9, map[changefeed.TopicPartition]int64{p0: 9}, 5},
		{1, 2, map[changefeed.TopicPartition]int64{p0: 9, p1: 2}, 3},
		{1, 5, map[changefeed.TopicPartition]int64{p0: 9, p1: 5}, 0},
	} {
		if step.partition >= 0 {
			commit(step.partition, step.offset)
		}
		got, err := changefeed.CommittedOffsets(ctx, b.Brokers(), group, spans)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, step.committed) {
			t.Fatalf("after committing %d on partition %d: committed %v, want %v", step.offset, step.partition, got, step.committed)
		}
		if n := spans.Behind(got); n != step.behind {
			t.Fatalf("after committing %d on partition %d: %d behind, want %d", step.offset, step.partition, n, step.behind)
		}
	}
}
