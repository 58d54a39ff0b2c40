package changefeed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// GroupLag returns how many messages of topics the consumer group has not
// committed yet, summed over their partitions: the sync lag of a copy that
// the group keeps in step. A partition the group never committed counts
// whole. A topic that does not exist yet counts zero, since nothing was
// published to it.
func GroupLag(ctx context.Context, brokers []string, group string, topics []string) (int64, error) {
	if len(brokers) == 0 {
		return 0, errors.New("group lag: no brokers")
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: metadata: %w", group, err)
	}
	parts := map[string][]int{}
	ends := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			continue
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(p.ID), kafka.FirstOffsetOf(p.ID))
		}
	}
	if len(parts) == 0 {
		return 0, nil
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: list offsets: %w", group, err)
	}
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: fetch offsets: %w", group, err)
	}
	// A group that never committed is unknown to some brokers; it lags by
	// everything.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return 0, fmt.Errorf("group lag of %s: fetch offsets: %w", group, committed.Error)
	}
	at := map[string]map[int]int64{}
	for topic, ps := range committed.Topics {
		at[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error == nil {
				at[topic][p.Partition] = p.CommittedOffset
			}
		}
	}
	var lag int64
	for topic, ps := range lo.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return 0, fmt.Errorf("group lag of %s: offsets of %s/%d: %w", group, topic, p.Partition, p.Error)
			}
			done, ok := at[topic][p.Partition]
			if !ok || done < 0 {
				done = p.FirstOffset
			}
			if n := p.LastOffset - done; n > 0 {
				lag += n
			}
		}
	}
	return lag, nil
}
