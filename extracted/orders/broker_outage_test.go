package orders_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/internal/chaostest"
)

// TestChaosBrokerDown stops the broker (the embedded one, over TCP, that
// the orders service's relay, read models' consumer and back sync and the
// monolith's relay use) and, while it is down, places orders, pays one,
// cancels one and changes the customer's e-mail in the monolith; then
// starts it again on the same address and data. The placements must go
// on, since the saga is HTTP; the outboxes must hold the events and drain
// once the broker is back; and every event must arrive exactly once: the
// monolith's copy of each order (the back sync) at the service's version,
// the service's projections at its event store's, the new e-mail in the
// read model and on the customer's orders, each consumer's inbox holding
// every event it was sent.
func TestChaosBrokerDown(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		log := changefeedtest.Logger()
		broker := changefeedtest.NewBroker(t)
		kafka := changefeed.KafkaConfig{TopicPrefix: "ord", Partitions: 2}
		kafka.SetDefaults("")
		w := newWorld(t, siblingDSN(t, dsn))
		monolithMetrics := prometheus.NewRegistry()
		rl, err := relay.New(relay.Config{Name: "monolith"}, relay.Options{DB: w.shop.DB(), Brokers: broker.Brokers(), Kafka: kafka, Logger: log, Registerer: monolithMetrics})
		changefeedtest.Must(t, err)
		relayCtx, stopRelay := context.WithCancel(context.Background())
		relayDone := make(chan error, 1)
		go func() { relayDone <- rl.Run(relayCtx) }()
		t.Cleanup(func() {
			stopRelay()
			if err := <-relayDone; err != nil {
				t.Errorf("monolith relay: %v", err)
			}
		})
		svc, url := w.startOrdersOpt(siblingDSN(t, dsn), func(c *orders.Config) { c.Sync.BackSyncDSN = w.shopDSN },
			orders.Options{Brokers: broker.Brokers(), Kafka: kafka, Logger: log})

		place := func(lines ...map[string]any) aclorders.LegacyOrder {
			t.Helper()
			var o aclorders.LegacyOrder
			w.call(http.MethodPost, url+"/api/orders", map[string]any{"customer_id": w.customer.ID, "lines": lines}).expect(http.StatusCreated).decode(&o)
			return o
		}
		a, b := w.products[0].SKU, w.products[1].SKU
		first := place(map[string]any{"sku": a, "quantity": 1})
		eventually(t, "the back sync copies the first order to the monolith", func() bool {
			return w.call(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", w.shop.URL, first.ID), nil).status == http.StatusOK
		})

		broker.Stop()
		ids := []int64{first.ID}
		for _, lines := range [][]map[string]any{
			{{"sku": a, "quantity": 2}, {"sku": b, "quantity": 1}},
			{{"sku": b, "quantity": 2}},
			{{"sku": a, "quantity": 1}},
		} {
			ids = append(ids, place(lines...).ID)
		}
		w.call(http.MethodPost, fmt.Sprintf("%s/api/orders/%d/pay", url, ids[1]), nil).expect(http.StatusOK)
		w.call(http.MethodPost, fmt.Sprintf("%s/api/orders/%d/cancel", url, ids[2]), nil).expect(http.StatusOK)
		const email = "ann.during.outage@example.nl"
		w.shop.Patch(fmt.Sprintf("/api/customers/%d", w.customer.ID), map[string]any{"email": email}).Expect(http.StatusOK)
		held := backlog(t, svc.DB(), orders.Name) + backlog(t, w.shop.DB(), "monolith")
		// The broker stays down until both relays have tried to publish
		// what their outboxes hold, and failed.
		eventually(t, "both relays fail to publish while the broker is down", func() bool {
			return publishErrors(t, svc.Registry()) > 0 && publishErrors(t, monolithMetrics) > 0
		})
		failed := publishErrors(t, svc.Registry()) + publishErrors(t, monolithMetrics)
		broker.Start()

		var problems []string
		changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
			problems = nil
			if n := backlog(t, svc.DB(), orders.Name); n > 0 {
				problems = append(problems, fmt.Sprintf("the orders service's outbox holds %d events", n))
			}
			if n := backlog(t, w.shop.DB(), "monolith"); n > 0 {
				problems = append(problems, fmt.Sprintf("the monolith's outbox holds %d events", n))
			}
			if c, ok, err := svc.Core().ReadModels().Customer(ctx, w.customer.ID); err != nil || !ok || c.Email != email {
				problems = append(problems, fmt.Sprintf("the read model has customer %+v (%v, %v), want e-mail %s", c, ok, err, email))
			}
			problems = append(problems, w.copies(svc, ids, email)...)
			return len(problems) == 0, "the outboxes drain and the copies catch up: " + strings.Join(problems, "; ")
		})
		// Exactly once: each consumer's inbox holds every event it was
		// sent, and the copies' versions (checked above) count each event
		// once.
		sent := eventIDs(t, svc.DB(), "SELECT id FROM outbox WHERE aggregatetype = ?", domain.AggregateType)
		got := eventIDs(t, w.shop.DB(), "SELECT event_id FROM changefeed_inbox WHERE consumer = ?", aclorders.BackSyncConsumer)
		if missing := missingFrom(sent, got); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("the back sync's inbox lacks %d of the service's %d order events: %v", len(missing), len(sent), missing))
		}
		// The topic may carry an event twice (the relay publishes at least
		// once; the inboxes absorb a repeat), but must carry each.
		onTopic := map[string]int{}
		messages := changefeedtest.ReadTopic(t, broker.Addr(), changefeed.Topic(kafka.TopicPrefix, domain.AggregateType))
		for _, m := range messages {
			for _, h := range m.Headers {
				if h.Key == changefeed.HeaderID {
					onTopic[string(h.Value)]++
				}
			}
		}
		if missing := missingFrom(sent, slices.Collect(maps.Keys(onTopic))); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("the topic lacks %d of the service's %d order events: %v", len(missing), len(sent), missing))
		}
		orderEvents := len(sent)
		sent = eventIDs(t, w.shop.DB(), "SELECT id FROM outbox WHERE aggregatetype = ?", aclorders.CustomerAggregate)
		got = eventIDs(t, svc.DB(), "SELECT event_id FROM changefeed_inbox WHERE consumer = ?", aclorders.ReadModelConsumer)
		if missing := missingFrom(sent, got); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("the read models' inbox lacks %d of the monolith's %d customer events: %v", len(missing), len(sent), missing))
		}
		saw := fmt.Sprintf("%d orders placed and moved while the broker was down with %d events held in the outboxes and %.0f failed publications; after the restart the outboxes drained, "+
			"the monolith's copies count each status move once, the projections are at the event store's versions, the topic carries the %d order events in %d messages, "+
			"and the inboxes hold the %d order and %d customer events",
			len(ids)-1, held, failed, orderEvents, len(messages), orderEvents, len(sent))
		if len(problems) > 0 {
			saw = strings.Join(problems, "; ")
		}
		chaostest.Report(t, len(problems) == 0 && held > 0,
			"the broker stopped while orders were placed, paid and cancelled and a customer's e-mail changed, then started on the same address and data",
			"placements answered 201 throughout, the outboxes held the events and drained, every event applied exactly once by the back sync, the projections and the read models", saw)
	})
}

// backlog counts the events of the outbox in gdb that the relay name has
// not published.
func backlog(t testing.TB, gdb *gorm.DB, name string) int64 {
	t.Helper()
	var n int64
	err := gdb.Raw("SELECT COUNT(*) FROM outbox WHERE seq > COALESCE((SELECT position FROM outbox_relay WHERE name = ?), 0)", name).Scan(&n).Error
	changefeedtest.Must(t, err)
	return n
}

// publishErrors is the count of a relay's failed publications in reg.
func publishErrors(t testing.TB, reg prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	changefeedtest.Must(t, err)
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "changefeed_relay_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == "publish" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// eventIDs runs query, which selects event ids, on gdb.
func eventIDs(t testing.TB, gdb *gorm.DB, query string, args ...any) []string {
	t.Helper()
	var ids []string
	changefeedtest.Must(t, gdb.Raw(query, args...).Scan(&ids).Error)
	return ids
}

// missingFrom lists the ids of want that got lacks.
func missingFrom(want, got []string) []string {
	var missing []string
	for _, id := range want {
		if !slices.Contains(got, id) {
			missing = append(missing, id)
		}
	}
	return missing
}

// copies compares the orders ids of svc with the monolith's copies of them
// (the back sync's: at a version that counts each status move once) and
// with the service's projections, and lists what differs; every order
// must carry email.
func (w *world) copies(svc *orders.Service, ids []int64, email string) []string {
	w.t.Helper()
	ctx := context.Background()
	var problems []string
	for _, id := range ids {
		o, err := svc.Core().Store().Get(ctx, id)
		changefeedtest.Must(w.t, err)
		want, err := svc.Core().Get(ctx, id)
		changefeedtest.Must(w.t, err)
		if want.CustomerEmail != email {
			problems = append(problems, fmt.Sprintf("order %d carries e-mail %s, want %s", id, want.CustomerEmail, email))
		}
		if view, err := readmodel.Get(ctx, svc.DB(), id); err != nil || view.Version != o.Version {
			problems = append(problems, fmt.Sprintf("order %d: the projection is at version %d (%v), the event store at %d", id, view.Version, err, o.Version))
		}
		// The monolith counts its version up on a status move, not on an
		// e-mail change.
		evs, err := svc.Core().Store().Events().Load(ctx, domain.AggregateID(id), 0)
		changefeedtest.Must(w.t, err)
		moves := 0
		for _, ev := range evs {
			if slices.Contains([]string{domain.EventPlaced, domain.EventPaid, domain.EventShipped, domain.EventCancelled}, ev.Type) {
				moves++
			}
		}
		ans := w.call(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", w.shop.URL, id), nil)
		if ans.status != http.StatusOK {
			problems = append(problems, fmt.Sprintf("order %d: the monolith answers %d", id, ans.status))
			continue
		}
		var got aclorders.LegacyOrder
		ans.decode(&got)
		if got.Status != want.Status || got.Version != moves || got.CustomerEmail != want.CustomerEmail || got.TotalCents != want.TotalCents || len(got.Lines) != len(want.Lines) {
			problems = append(problems, fmt.Sprintf("order %d: the monolith has status %d, version %d, e-mail %s, %d cents in %d lines; the service status %d after %d moves, e-mail %s, %d cents in %d lines",
				id, got.Status, got.Version, got.CustomerEmail, got.TotalCents, len(got.Lines), want.Status, moves, want.CustomerEmail, want.TotalCents, len(want.Lines)))
		}
	}
	return problems
}
