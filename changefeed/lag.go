package changefeed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int
}

// Span is the part of a partition's log that the broker holds: First is
// the offset of its oldest message still kept, End the offset its next
// message gets.
type Span struct {
	First, End int64
}

// Spans are the spans of the partitions of some topics.
type Spans map[TopicPartition]Span

// Behind returns how many messages of s the committed offsets have not
// reached, compared partition by partition and summed: a committed offset
// at or past a partition's End counts zero, and a partition with none
// (never committed) counts from its First. A group's committed offset is
// the offset of the next message it will read, so a group that committed
// up to End read everything s covers.
func (s Spans) Behind(committed map[TopicPartition]int64) int64 {
	var n int64
	for tp, sp := range s {
		done, ok := committed[tp]
		if !ok || done < sp.First {
			done = sp.First
		}
		if sp.End > done {
			n += sp.End - done
		}
	}
	return n
}

// TopicSpans returns the span of every partition of topics, as the broker
// holds them now: their End offsets are the position that a consumer group
// must commit to have read every message published so far. A topic that
// does not exist yet has no partition here, since nothing was published
// to it.
func TopicSpans(ctx context.Context, brokers []string, topics []string) (Spans, error) {
	c, err := lagClient(brokers)
	if err != nil {
		return nil, err
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("offsets of %v: metadata: %w", topics, err)
	}
	reqs := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue
		}
		for _, p := range t.Partitions {
			reqs[t.Name] = append(reqs[t.Name], kafka.LastOffsetOf(p.ID), kafka.FirstOffsetOf(p.ID))
		}
	}
	out := Spans{}
	if len(reqs) == 0 {
		return out, nil
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: reqs})
	if err != nil {
		return nil, fmt.Errorf("offsets of %v: list offsets: %w", topics, err)
	}
	for topic, ps := range lo.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[TopicPartition{topic, p.Partition}] = Span{First: p.FirstOffset, End: p.LastOffset}
		}
	}
	return out, nil
}

// CommittedOffsets returns the offsets that the consumer group committed
// for the partitions of s. A partition the group never committed has none
// here, and neither has any partition of a group the broker does not know
// (one that never committed at all).
func CommittedOffsets(ctx context.Context, brokers []string, group string, s Spans) (map[TopicPartition]int64, error) {
	out := map[TopicPartition]int64{}
	if len(s) == 0 {
		return out, nil
	}
	c, err := lagClient(brokers)
	if err != nil {
		return nil, err
	}
	parts := map[string][]int{}
	for tp := range s {
		parts[tp.Topic] = append(parts[tp.Topic], tp.Partition)
	}
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	// A group that never committed is unknown to some brokers: it
	// committed nothing.
	if res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, res.Error)
	}
	for topic, ps := range res.Topics {
		for _, p := range ps {
			if p.Error == nil && p.CommittedOffset >= 0 {
				out[TopicPartition{topic, p.Partition}] = p.CommittedOffset
			}
		}
	}
	return out, nil
}

// GroupLag returns how many messages of topics the consumer group has not
// committed yet, summed over their partitions: the sync lag of a copy that
// the group keeps in step. A partition the group never committed counts
// whole. A topic that does not exist yet counts zero, since nothing was
// published to it.
func GroupLag(ctx context.Context, brokers []string, group string, topics []string) (int64, error) {
	s, err := TopicSpans(ctx, brokers, topics)
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: %w", group, err)
	}
	committed, err := CommittedOffsets(ctx, brokers, group, s)
	if err != nil {
		return 0, fmt.Errorf("group lag: %w", err)
	}
	return s.Behind(committed), nil
}

// lagClient is a client of the cluster at brokers for the offset
// requests above.
func lagClient(brokers []string) (*kafka.Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("offsets: no brokers")
	}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}, nil
}
