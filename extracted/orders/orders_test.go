package orders_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/extracted/orders/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func open(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	return changefeedtest.Open(t, dsn, orders.Migrations()...)
}

func newStore(t *testing.T, gdb *gorm.DB, opt store.Options) *store.Store {
	t.Helper()
	s, err := store.New(gdb, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// placed is order id's placement by customer, with lines lines.
func placed(id, customer int64, lines int) domain.Placed {
	p := domain.Placed{ID: id, CustomerID: customer, CustomerEmail: fmt.Sprintf("c%d@example.nl", customer), Currency: "EUR", PlacedAt: t0.Add(time.Duration(id) * time.Minute)}
	for i := range lines {
		price, qty := int64(100*(i+1)+int(id)), i%3+1
		p.Lines = append(p.Lines, domain.Line{LineNo: i + 1, SKU: fmt.Sprintf("SKU-%d", i), ProductRef: fmt.Sprintf("P-%06d", i), ProductName: "product",
			UnitPriceCents: price, Quantity: qty, LineTotalCents: price * int64(qty), Warehouse: "nl-ams"})
		p.TotalCents += price * int64(qty)
	}
	return p
}

// TestOrderStore runs an order's lifecycle through the store on both
// engines: the state is the fold of the stored events, refused commands
// append nothing and map to the domain's errors, and every event has a
// copy in the outbox.
func TestOrderStore(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := open(t, dsn)
		s := newStore(t, gdb, store.Options{})
		if _, err := s.Place(ctx, placed(1042, 7, 2)); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name    string
			cmd     func(domain.Order) ([]eventsource.Event, error)
			wantErr error
		}{
			{"ship too early", func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(t0) }, domain.ErrTransition},
			{"reserve", func(o domain.Order) ([]eventsource.Event, error) { return o.ReserveStock() }, nil},
			{"authorize", func(o domain.Order) ([]eventsource.Event, error) {
				return o.AuthorizePayment(domain.Authorization{AuthorizationID: "a-1", AmountCents: o.TotalCents})
			}, nil},
			{"pay", func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(t0.Add(time.Hour)) }, nil},
			{"ship", func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(t0.Add(2 * time.Hour)) }, nil},
			{"cancel shipped", func(o domain.Order) ([]eventsource.Event, error) { return o.Cancel("late", t0) }, domain.ErrTransition},
		}
		for _, st := range steps {
			if _, err := s.Execute(ctx, 1042, st.cmd); !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: %v, want %v", st.name, err, st.wantErr)
			}
		}
		var transition *domain.TransitionError
		if _, err := s.Execute(ctx, 1042, func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(t0) }); !errors.As(err, &transition) || transition.From != domain.StatusShipped {
			t.Errorf("pay a shipped order = %v, want a TransitionError from shipped", err)
		}
		if _, err := s.Place(ctx, placed(1042, 7, 1)); !errors.Is(err, domain.ErrExists) {
			t.Errorf("place 1042 again = %v, want ErrExists", err)
		}
		if _, err := s.Get(ctx, 99); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Get(99) = %v, want ErrNotFound", err)
		}
		o, err := s.Get(ctx, 1042)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != domain.StatusShipped || o.Version != 5 || o.Stock != domain.StepDone || o.Payment != domain.StepDone || o.ShippedAt == nil {
			t.Errorf("order after its lifecycle: %+v", o)
		}
		var outboxTypes []string
		if err := gdb.Raw("SELECT type FROM outbox WHERE aggregatetype = 'order' AND aggregateid = '1042' ORDER BY seq").Scan(&outboxTypes).Error; err != nil {
			t.Fatal(err)
		}
		want := []string{domain.EventPlaced, domain.EventStockReserved, domain.EventPaymentAuthorized, domain.EventPaid, domain.EventShipped}
		if !slices.Equal(outboxTypes, want) {
			t.Errorf("outbox holds %v, want %v", outboxTypes, want)
		}
	})
}

// TestOrderSnapshots changes an order often enough for snapshots and
// checks that loading from the snapshot gives the state a full fold gives.
func TestOrderSnapshots(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := open(t, dsn)
		s := newStore(t, gdb, store.Options{SnapshotEvery: 4})
		if _, err := s.Place(ctx, placed(1, 1, 3)); err != nil {
			t.Fatal(err)
		}
		for i := range 9 {
			if _, err := s.Execute(ctx, 1, func(o domain.Order) ([]eventsource.Event, error) {
				return o.ChangeCustomerEmail(fmt.Sprintf("new%d@example.nl", i))
			}); err != nil {
				t.Fatal(err)
			}
		}
		var snaps int64
		if err := gdb.Raw("SELECT version FROM es_snapshots WHERE aggregate_type = 'order' AND aggregate_id = '1'").Scan(&snaps).Error; err != nil || snaps != 8 {
			t.Fatalf("snapshot at version %d, %v; want 8", snaps, err)
		}
		fromSnapshot, err := s.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		full, err := newStore(t, gdb, store.Options{SnapshotEvery: -1}).Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromSnapshot, full) || full.Version != 10 || full.CustomerEmail != "new8@example.nl" {
			t.Errorf("from the snapshot %+v\nfull fold        %+v", fromSnapshot, full)
		}
	})
}

// history drives n orders of a few customers through random lifecycles,
// some commands at once, with a fixed seed, and returns the ids.
func history(t *testing.T, s *store.Store, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 42))
	ids := make([]int64, n)
	for i := range n {
		ids[i] = int64(1000 + i)
		if _, err := s.Place(ctx, placed(ids[i], int64(i%7+1), i%4+1)); err != nil {
			t.Fatal(err)
		}
	}
	cmds := []func(domain.Order) ([]eventsource.Event, error){
		func(o domain.Order) ([]eventsource.Event, error) { return o.ReserveStock() },
		func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(t0.Add(time.Hour)) },
		func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(t0.Add(2 * time.Hour)) },
		func(o domain.Order) ([]eventsource.Event, error) {
			return o.Cancel("changed my mind", t0.Add(3*time.Hour))
		},
		func(o domain.Order) ([]eventsource.Event, error) { return o.ChangeCustomerEmail("moved@example.nl") },
	}
	var wg sync.WaitGroup
	for w := range 3 {
		picks := make([][2]int, 3*n)
		for i := range picks {
			picks[i] = [2]int{rng.IntN(n), rng.IntN(len(cmds))}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range picks {
				if _, err := s.Execute(ctx, ids[p[0]], cmds[p[1]]); err != nil && !errors.Is(err, domain.ErrTransition) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return ids
}

// tables reads every read model table whole, in key order, as strings.
func tables(t *testing.T, gdb *gorm.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, order := range map[string]string{"order_views": "id", "orders_by_customer": "customer_id, order_id", "orders_by_status": "order_id"} {
		var rows []map[string]any
		if err := gdb.Table(table).Order(order).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out[table] = append(out[table], fmt.Sprint(r))
		}
	}
	return out
}

// rebuildAll rebuilds every projection of r from position 0.
func rebuildAll(t *testing.T, r *eventsource.Runner) {
	t.Helper()
	for _, p := range r.Projections() {
		if err := r.Rebuild(context.Background(), p.Name()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadModels projects a random history of orders, written
// concurrently, and checks on both engines that each read model agrees
// with the aggregates (the source of truth); that rebuilding every
// projection from position 0 gives the same tables; and that the lag
// metric counts the events not yet projected and falls to 0.
func TestReadModels(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := open(t, dsn)
		s := newStore(t, gdb, store.Options{})
		ids := history(t, s, 40)
		reg := prometheus.NewRegistry()
		r, err := orders.NewProjections(gdb, eventsource.RunnerConfig{Batch: 16}, eventsource.RunnerOptions{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		head, err := s.Events().Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := changefeedtest.Sum(t, reg, "eventsource_projection_lag_events"), float64(3*head); got != want {
			t.Errorf("lag before projecting = %v events over the 3 projections, want %v", got, want)
		}
		if err := r.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if got := changefeedtest.Sum(t, reg, "eventsource_projection_lag_events"); got != 0 {
			t.Errorf("lag once caught up = %v, want 0", got)
		}
		byCustomer := map[int64][]int64{}
		byStatus := map[domain.Status][]int64{}
		for _, id := range slices.Backward(ids) {
			o, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			view, err := readmodel.Get(ctx, gdb, id)
			if err != nil {
				t.Fatal(err)
			}
			// The view holds the order as the API shows it, not the saga's
			// step states.
			o.Stock, o.Payment, o.AuthorizationID, o.CancelReason = "", "", "", ""
			if !reflect.DeepEqual(view, o) {
				t.Errorf("order %d:\nview      %+v\naggregate %+v", id, view, o)
			}
			byCustomer[o.CustomerID] = append(byCustomer[o.CustomerID], id)
			byStatus[o.Status] = append(byStatus[o.Status], id)
		}
		for c, want := range byCustomer {
			got, err := readmodel.ByCustomerID(ctx, gdb, c, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, sm := range got {
				gotIDs = append(gotIDs, sm.ID)
				if o, _ := s.Get(ctx, sm.ID); sm.Status != o.Status || sm.TotalCents != o.TotalCents || sm.CustomerID != c {
					t.Errorf("customer %d's order %+v, aggregate %+v", c, sm, o)
				}
			}
			if !slices.Equal(gotIDs, want) {
				t.Errorf("customer %d's orders %v, want %v", c, gotIDs, want)
			}
		}
		for _, st := range domain.Statuses {
			got, err := readmodel.IDsByStatus(ctx, gdb, st, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, byStatus[st]) {
				t.Errorf("orders %s: %v, want %v", st, got, byStatus[st])
			}
		}
		if len(byStatus) < 3 {
			t.Errorf("the history reached only the statuses %v; the test needs a richer one", slices.Collect(maps.Keys(byStatus)))
		}
		before := tables(t, gdb)
		rebuildAll(t, r)
		if after := tables(t, gdb); !reflect.DeepEqual(after, before) {
			t.Errorf("rebuilt read models differ:\nafter  %v\nbefore %v", after, before)
		}
		if len(before["order_views"]) != len(ids) {
			t.Errorf("order_views holds %d rows, want %d", len(before["order_views"]), len(ids))
		}
	})
}

// TestOrderEventsPublished runs the relay on the service's outbox with a
// broker over TCP and finds each order event published once, keyed by the
// order id, in the stream's order, with the event store's ids.
func TestOrderEventsPublished(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		gdb := open(t, dsn)
		s := newStore(t, gdb, store.Options{})
		for _, id := range []int64{7, 8} {
			if _, err := s.Place(ctx, placed(id, 1, 2)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Execute(ctx, id, func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(t0) }); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Execute(ctx, 7, func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(t0) }); err != nil {
			t.Fatal(err)
		}
		b := changefeedtest.NewBroker(t)
		r, err := relay.New(relay.Config{PollInterval: 5 * time.Millisecond}, relay.Options{DB: gdb, Brokers: b.Brokers(),
			Kafka: changefeed.KafkaConfig{TopicPrefix: "ot", Partitions: 3}, Logger: changefeedtest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		}()
		topic := changefeed.Topic("ot", domain.AggregateType)
		var msgs []kafka.Message
		changefeedtest.Eventually(t, 2*time.Minute, func() (bool, string) {
			msgs = changefeedtest.ReadTopic(t, b.Addr(), topic)
			return len(msgs) == 5, fmt.Sprintf("%d messages on %s, want 5", len(msgs), topic)
		})
		byKey := map[string][]string{}
		for _, m := range msgs {
			byKey[string(m.Key)] = append(byKey[string(m.Key)], changefeedtest.Header(m, "type"))
		}
		want := map[string][]string{"7": {domain.EventPlaced, domain.EventPaid, domain.EventShipped}, "8": {domain.EventPlaced, domain.EventPaid}}
		if !reflect.DeepEqual(byKey, want) {
			t.Errorf("published %v, want %v", byKey, want)
		}
		stored, err := s.Events().ReadAll(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, ev := range stored {
			ids[ev.ID.String()] = true
		}
		for _, m := range msgs {
			if id := changefeedtest.Header(m, "id"); !ids[id] || changefeedtest.Header(m, "source") != domain.Source {
				t.Errorf("message %s from %s is not an event of the store", id, changefeedtest.Header(m, "source"))
			}
		}
	})
}
