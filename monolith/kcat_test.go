package monolith_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestShopKcat checks the shop's events with a third-party Kafka client,
// kcat (librdkafka): it lists the shop's topics on the embedded broker and
// consumes what one order produced, order.placed on shop.order and
// stock.reserved on shop.stock, with the aggregate id as the key and the
// outbox row's id in the id header, as Debezium's outbox router sets them.
func TestShopKcat(t *testing.T) {
	kcat := changefeedtest.Kcat(t)
	p := newShopPipeline(t, dbtest.SQLiteDSN(t), dbtest.SQLiteDSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := maxSeq(t, p.shop.DB())
	status, body, err := p.post("/api/orders", map[string]any{"customer_id": p.customers[0], "lines": []map[string]any{{"sku": shopSKUs[0], "quantity": 2}}})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("place order: %d %s %v", status, body, err)
	}
	var o struct{ ID int64 }
	changefeedtest.Must(t, json.Unmarshal(body, &o))
	orderID := strconv.FormatInt(o.ID, 10)
	rows := outboxAfter(t, p.shop.DB(), before)
	if len(rows) != 2 || rows[0].Type != "stock.reserved" || rows[1].Type != "order.placed" {
		t.Fatalf("the order wrote %+v, want stock.reserved and order.placed", rows)
	}
	reserved, placed := rows[0], rows[1]

	r, _ := p.relay(relay.Config{}, nil)
	total := maxSeq(t, p.shop.DB())
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == total, fmt.Sprintf("%d of %d events published", r.Published(), total)
	})

	topics := changefeedtest.KcatTopics(t, changefeedtest.RunKcat(ctx, t, kcat, "-b", p.broker.Addr(), "-L", "-J"))
	for _, agg := range []string{"product", "customer", "order", "stock"} {
		topic := changefeed.Topic(shopPrefix, agg)
		if n := topics[topic]; n != shopKafka.Partitions {
			t.Errorf("kcat -L lists %s with %d partitions, want %d: %v", topic, n, shopKafka.Partitions, topics)
		}
	}

	consume := func(agg string) []changefeedtest.KcatRecord {
		return changefeedtest.KcatRecords(t, changefeedtest.RunKcat(ctx, t, kcat,
			"-b", p.broker.Addr(), "-C", "-t", changefeed.Topic(shopPrefix, agg), "-o", "beginning", "-e", "-J", "-q"))
	}
	tests := []struct {
		agg  string
		want outboxRow
		// count is how many events the topic holds: the order's, and on
		// shop.stock the fixtures' deliveries.
		count int
		// fields are payload values the event must carry.
		fields map[string]string
	}{
		{agg: "order", want: placed, count: 1, fields: map[string]string{"id": orderID, "status": "10", "lines.0.quantity": "2"}},
		{agg: "stock", want: reserved, count: 1 + len(shopSKUs), fields: map[string]string{
			"reserved": "2", "movement.kind": `"reserve"`, "movement.reference": strconv.Quote("order/" + orderID)}},
	}
	for _, tt := range tests {
		t.Run(tt.agg, func(t *testing.T) {
			recs := consume(tt.agg)
			if len(recs) != tt.count {
				t.Fatalf("kcat consumed %d events from %s, want %d", len(recs), changefeed.Topic(shopPrefix, tt.agg), tt.count)
			}
			var found []changefeedtest.KcatRecord
			for _, rec := range recs {
				if rec.Header(changefeed.HeaderID) == tt.want.ID {
					found = append(found, rec)
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d events with id %s, want 1: %+v", len(found), tt.want.ID, recs)
			}
			rec := found[0]
			w := tt.want
			headers := map[string]string{
				"aggregatetype": w.Aggregatetype, "type": w.Type, "source": w.Source, "origin": "monolith",
				"schema_version": "1", "traceparent": w.Traceparent,
			}
			if rec.Key != w.Aggregateid {
				t.Errorf("key %q, want the aggregate id %q", rec.Key, w.Aggregateid)
			}
			for name, want := range headers {
				if got := rec.Header(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			if at, err := time.Parse(time.RFC3339Nano, rec.Header("occurred_at")); err != nil || !at.Equal(w.OccurredAt) {
				t.Errorf("header occurred_at %q, want %s", rec.Header("occurred_at"), w.OccurredAt)
			}
			fields := flatten(t, rec.Payload)
			for path, want := range tt.fields {
				if fields[path] != want {
					t.Errorf("payload %s = %s, want %s; payload %s", path, fields[path], want, rec.Payload)
				}
			}
		})
	}
}
