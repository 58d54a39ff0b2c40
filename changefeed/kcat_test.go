package changefeed_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestKcat checks that a third-party Kafka client, kcat (librdkafka), works
// against the embedded broker: it lists the topics and consumes the events
// that an order produced, with their envelope headers. The shop's own
// events are checked the same way in monolith.TestShopKcat.
func TestKcat(t *testing.T) {
	kcat := changefeedtest.Kcat(t)
	p := newPipeline(t, dbtest.SQLiteDSN(t), dbtest.SQLiteDSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	changefeedtest.Must(t, p.src.Place(ctx, "kcat-1", 4200))
	changefeedtest.Must(t, p.src.SetStatus(ctx, "kcat-1", "paid"))
	r, _ := p.relay(relay.Config{})
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == 2, "the order's events are not published"
	})
	topic := changefeed.Topic(prefix, "order")

	// kcat -L: the topic is there with its partitions.
	topics := changefeedtest.KcatTopics(t, changefeedtest.RunKcat(ctx, t, kcat, "-b", p.broker.Addr(), "-L", "-J"))
	if n, ok := topics[topic]; !ok || n != kafkaCfg.Partitions {
		t.Fatalf("kcat -L lists %s with %d partitions (listed: %t), want %d: %v", topic, n, ok, kafkaCfg.Partitions, topics)
	}

	// kcat -C: the order's two events, in order, with the envelope.
	got := changefeedtest.KcatRecords(t, changefeedtest.RunKcat(ctx, t, kcat, "-b", p.broker.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"))
	if len(got) != 2 {
		t.Fatalf("kcat consumed %d events, want 2: %+v", len(got), got)
	}
	for i, want := range []struct{ typ, status string }{{"order.placed", "placed"}, {"order.changed", "paid"}} {
		rec := got[i]
		var st changefeedtest.OrderState
		changefeedtest.Must(t, json.Unmarshal([]byte(rec.Payload), &st))
		if rec.Key != "kcat-1" || rec.Header("type") != want.typ || rec.Header("id") == "" || rec.Header("source") != "test.orders" ||
			st.Status != want.status || st.Total != 4200 {
			t.Errorf("event %d: key %q headers %v payload %s", i, rec.Key, rec.Headers, rec.Payload)
		}
	}
}
