package inventory_test

import (
	"path/filepath"
	"testing"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// TestLifecycle checks the lifecycle rule (lifecycletest.Check) on the
// service with its change-data parts: New opens its database but no
// listener and starts nothing; Run listens, runs the forward sync, the
// relay and the back sync, and stops and waits for all of them.
func TestLifecycle(t *testing.T) {
	broker := changefeedtest.NewBroker(t)
	kafka := changefeed.KafkaConfig{TopicPrefix: "life", Partitions: 1}
	lifecycletest.Check(t, func(t *testing.T, addr string) (lifecycletest.Component, string) {
		dir := t.TempDir()
		svc := newUnprepared(t, "sqlite:"+filepath.Join(dir, "inventory.db"), func(c *inventory.Config, o *inventory.Options) {
			c.Addr = addr
			c.Sync.BackSyncDSN = "sqlite:" + filepath.Join(dir, "monolith.db")
			o.Brokers, o.Kafka, o.Logger = broker.Brokers(), kafka, changefeedtest.Logger()
		})
		return svc, dir
	}, "stranglerkit/strangler/extracted", "stranglerkit/strangler/changefeed/consumer", "stranglerkit/strangler/changefeed/relay",
		"stranglerkit/strangler/acl", "segmentio/kafka-go", "net/http.(*Server)", "net/http.(*conn)")
}
