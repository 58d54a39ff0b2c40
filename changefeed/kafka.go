package changefeed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaConfig says where the events go. It is the "kafka" section of the
// config; the relay and every consumer read it.
type KafkaConfig struct {
	// Brokers lists the bootstrap brokers of a Kafka cluster as host:port.
	// If empty, the embedded broker at broker.addr is used.
	Brokers []string `yaml:"brokers"`
	// TopicPrefix starts every topic name: events about an aggregate type go
	// to <topic_prefix>.<aggregatetype>. If empty, "strangler" is used.
	TopicPrefix string `yaml:"topic_prefix"`
	// Partitions is the partition count of the topics Strangler creates. If
	// zero, 6 is used.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of the topics Strangler creates. If zero, the
	// broker's default.replication.factor is used.
	ReplicationFactor int `yaml:"replication_factor"`
	// ClientID names Strangler's connections in the broker's logs and
	// quotas. If empty, "strangler" is used.
	ClientID string `yaml:"client_id"`
	// Partitioner maps an aggregate id to a partition: "hash" (kafka-go's
	// Hash, FNV-1a, as Sarama) or "murmur2" (the Java client's default, as
	// Kafka Connect and so Debezium use). Switching relays keeps every
	// aggregate on its partition only if both use the same one. If empty,
	// "hash" is used.
	Partitioner string `yaml:"partitioner"`
}

// Balancer returns the kafka-go balancer for the Partitioner setting.
func (c KafkaConfig) Balancer() kafka.Balancer {
	if c.Partitioner == "murmur2" {
		return kafka.Murmur2Balancer{}
	}
	return &kafka.Hash{}
}

// SetDefaults fills the empty fields.
func (c *KafkaConfig) SetDefaults(string) {
	if c.TopicPrefix == "" {
		c.TopicPrefix = "strangler"
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	if c.ClientID == "" {
		c.ClientID = "strangler"
	}
	if c.Partitioner == "" {
		c.Partitioner = "hash"
	}
}

// Validate reports every invalid field.
func (c KafkaConfig) Validate() error {
	var errs []error
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("brokers[%d]: %q: want host:port", i, b))
		}
	}
	if c.TopicPrefix != "" && !topicName.MatchString(c.TopicPrefix) {
		errs = append(errs, fmt.Errorf("topic_prefix: %q may hold only a-z, A-Z, 0-9, '.', '_' and '-'", c.TopicPrefix))
	}
	if c.Partitions < 0 || c.Partitions > 10000 {
		errs = append(errs, fmt.Errorf("partitions: want 1 to 10000, not %d", c.Partitions))
	}
	switch c.Partitioner {
	case "", "hash", "murmur2":
	default:
		errs = append(errs, fmt.Errorf("partitioner: want hash or murmur2, not %q", c.Partitioner))
	}
	if c.ReplicationFactor < 0 || c.ReplicationFactor > 100 {
		errs = append(errs, fmt.Errorf("replication_factor: want 1 to 100 or 0 for the broker's default, not %d", c.ReplicationFactor))
	}
	return errors.Join(errs...)
}

// Topics creates topics on demand with the configured partitions and
// remembers which exist, so that publishing to a new aggregate type needs no
// set-up.
type Topics struct {
	client            *kafka.Client
	partitions        int
	replicationFactor int

	mu    sync.Mutex
	known map[string]bool
}

// NewTopics returns a Topics for the cluster at brokers. Give it the
// kafka.Transport that the writers and readers of these topics use: creating
// a topic refreshes that transport's cached metadata, so that the first
// write does not fail on a topic its cache has not seen.
func NewTopics(brokers []string, partitions, replicationFactor int, transport kafka.RoundTripper) *Topics {
	if partitions <= 0 {
		partitions = 1
	}
	return &Topics{
		client:            &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: transport},
		partitions:        partitions,
		replicationFactor: replicationFactor,
		known:             map[string]bool{},
	}
}

// Ensure creates those of topics that do not exist yet. Topics that exist
// keep their partitions.
func (t *Topics) Ensure(ctx context.Context, topics ...string) error {
	t.mu.Lock()
	var missing []string
	for _, name := range topics {
		if !t.known[name] && !contains(missing, name) {
			missing = append(missing, name)
		}
	}
	t.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	rf := t.replicationFactor
	if rf <= 0 {
		rf = -1
	}
	req := &kafka.CreateTopicsRequest{}
	for _, name := range missing {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: name, NumPartitions: t.partitions, ReplicationFactor: rf})
	}
	res, err := t.client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %s: %w", strings.Join(missing, ", "), err)
	}
	var errs []error
	for _, name := range missing {
		if err := res.Errors[name]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", name, err))
			continue
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	t.mu.Lock()
	for _, name := range missing {
		t.known[name] = true
	}
	t.mu.Unlock()
	return nil
}

// Forget drops what Topics knows, so that the next Ensure asks the broker
// again, as after a broker lost its data.
func (t *Topics) Forget() {
	t.mu.Lock()
	t.known = map[string]bool{}
	t.mu.Unlock()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
