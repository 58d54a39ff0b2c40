package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/store"
	"github.com/stranglerkit/strangler/monolith/shoptest"
	"github.com/stranglerkit/strangler/phase"
)

// rig is the two-way sync with real parts: the monolith, the orders
// service's database with its event store and read models, both relays,
// the forward sync on the service's database and the back sync on the
// monolith's, over a broker on loopback TCP.
type rig struct {
	t      *testing.T
	shop   *shoptest.Shop
	svc    *gorm.DB
	fwd    *aclorders.Forward
	back   *aclorders.BackSync
	proj   *eventsource.Runner
	orders *store.Store
	ids    *aclorders.IDs
	broker *changefeedtest.Broker
}

const prefix = "shop"

// newRig builds the monolith (seeded) and the service's database; start
// runs the relays and the syncs.
func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	r := &rig{t: t, shop: shoptest.New(t, dsn, shoptest.WithSeed())}
	changefeedtest.Open(t, dsn, consumer.Migrations())
	r.svc = changefeedtest.Open(t, dbSibling(t, dsn), append(orders.Migrations(), aclorders.Migrations(), consumer.Migrations())...)
	var err error
	r.fwd, err = aclorders.NewForward(r.svc, changefeedtest.Logger())
	changefeedtest.Must(t, err)
	r.back = aclorders.NewBackSync()
	r.proj, err = orders.NewProjections(r.svc, eventsource.RunnerConfig{}, eventsource.RunnerOptions{})
	changefeedtest.Must(t, err)
	t.Cleanup(func() { _ = r.proj.Close() })
	// The service's own writes, as its API and saga append them.
	r.orders, err = store.New(r.svc, store.Options{})
	changefeedtest.Must(t, err)
	r.ids = aclorders.NewIDs(r.svc)
	return r
}

func (r *rig) start() {
	t := r.t
	t.Helper()
	r.broker = changefeedtest.NewBroker(t)
	kafka := changefeed.KafkaConfig{TopicPrefix: prefix, Partitions: 3}
	for name, gdb := range map[string]*gorm.DB{"shop": r.shop.DB(), "orders-service": r.svc} {
		rl, err := relay.New(relay.Config{Name: name, PollInterval: 5 * time.Millisecond},
			relay.Options{DB: gdb, Brokers: r.broker.Brokers(), Kafka: kafka, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		changefeedtest.Go(t, "relay "+name, rl.Run)
	}
	run := func(cfg consumer.Config, gdb *gorm.DB, register func(*consumer.Consumer)) {
		cfg.SessionTimeout, cfg.MaxWait = 3*time.Second, 100*time.Millisecond
		c, err := consumer.New(cfg, consumer.Options{DB: gdb, Brokers: r.broker.Brokers(), Kafka: kafka, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		register(c)
		changefeedtest.Go(t, cfg.Name, c.Run)
	}
	run(aclorders.ForwardConfig(prefix), r.svc, r.fwd.Register)
	run(aclorders.BackSyncConfig(prefix), r.shop.DB(), r.back.Register)
}

// backfill runs the orders job as `strangler backfill orders-orders` does,
// with the lines mapping.
func (r *rig) backfill(restart bool) backfill.Result {
	r.t.Helper()
	res, err := backfill.Run(context.Background(), aclorders.OrdersBackfillJob(),
		backfill.Options{DB: r.shop.DB(), Map: aclorders.LinesMap(r.shop.DB()), Restart: restart, Logger: changefeedtest.Logger()})
	if err != nil || !res.Done {
		r.t.Fatalf("backfill: %+v, %v", res, err)
	}
	return res
}

// verify brings the read models up to date and compares.
func (r *rig) verify(opt verify.Options) *verify.Report {
	r.t.Helper()
	changefeedtest.Must(r.t, r.proj.CatchUp(context.Background()))
	rep, err := aclorders.Verify(context.Background(), r.shop.DB(), r.svc, opt)
	changefeedtest.Must(r.t, err)
	return rep
}

// settle waits until every event of both outboxes is published and
// consumed, and the copies agree.
func (r *rig) settle() {
	r.t.Helper()
	ctx := context.Background()
	changefeedtest.Eventually(r.t, 120*time.Second, func() (bool, string) {
		for name, gdb := range map[string]*gorm.DB{"shop": r.shop.DB(), "orders-service": r.svc} {
			var st struct {
				Head, Position int64
				Gaps           string
			}
			changefeedtest.Must(r.t, gdb.Raw("SELECT (SELECT COALESCE(MAX(seq), 0) FROM outbox) AS head, COALESCE((SELECT position FROM outbox_relay WHERE name = ?), -1) AS position, COALESCE((SELECT gaps FROM outbox_relay WHERE name = ?), '') AS gaps", name, name).Scan(&st).Error)
			if st.Position < st.Head || st.Gaps != "[]" {
				return false, fmt.Sprintf("relay %s at %d of %d, gaps %s", name, st.Position, st.Head, st.Gaps)
			}
		}
		for group, topics := range map[string][]string{
			aclorders.ForwardConsumer:  aclorders.ForwardConfig(prefix).Topics,
			aclorders.BackSyncConsumer: aclorders.BackSyncConfig(prefix).Topics,
		} {
			lag, err := changefeed.GroupLag(ctx, r.broker.Brokers(), group, topics)
			if err != nil || lag != 0 {
				return false, fmt.Sprintf("group %s lag %d, %v", group, lag, err)
			}
		}
		rep := r.verify(verify.Options{})
		return !rep.Drift, fmt.Sprintf("drift: %d missing %v, %d extra %v, %d changed %+v", rep.MissingCount, rep.Missing, rep.ExtraCount, rep.Extra, rep.ChangedCount, rep.Changed)
	})
}

// place places an order of customer 1 on the monolith.
func (r *rig) place(qty int) aclorders.LegacyOrder {
	r.t.Helper()
	var o aclorders.LegacyOrder
	r.shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{
		map[string]any{"sku": "COF-ETH-250", "quantity": qty}, map[string]any{"sku": "COF-COL-250", "quantity": 1},
	}}).Expect(http.StatusCreated).Decode(&o)
	return o
}

// move posts a status change of order id to the monolith.
func (r *rig) move(id int64, action string) {
	r.t.Helper()
	r.shop.Post(fmt.Sprintf("/api/orders/%d/%s", id, action), nil).Expect(http.StatusOK)
}

// servicePlace places an order on the service, as its saga does once it
// owns the writes: a new id from the service's range, lines priced as the
// monolith priced another order.
func (r *rig) servicePlace(like aclorders.LegacyOrder) domain.Order {
	r.t.Helper()
	id, err := r.ids.Next(context.Background())
	changefeedtest.Must(r.t, err)
	return r.servicePlaceAs(id, like)
}

// servicePlaceAs places order id on the service, an id that IDs.Next gave
// earlier: a saga's, whose order is confirmed some time after its id was
// taken.
func (r *rig) servicePlaceAs(id int64, like aclorders.LegacyOrder) domain.Order {
	r.t.Helper()
	ctx := context.Background()
	tmpl, err := aclorders.FromLegacy(like)
	changefeedtest.Must(r.t, err)
	p := aclorders.Imported(tmpl).Placed
	p.ID, p.PlacedAt = id, time.Now().UTC().Truncate(time.Microsecond)
	o, err := r.orders.Place(ctx, p)
	changefeedtest.Must(r.t, err)
	return o
}

// serviceMove runs a status command on the service's order id.
func (r *rig) serviceMove(id int64, cmd func(domain.Order) ([]eventsource.Event, error)) {
	r.t.Helper()
	_, err := r.orders.Execute(context.Background(), id, cmd)
	changefeedtest.Must(r.t, err)
}

func pay(o domain.Order) ([]eventsource.Event, error)  { return o.Pay(time.Now()) }
func ship(o domain.Order) ([]eventsource.Event, error) { return o.Ship(time.Now()) }
func cancel(o domain.Order) ([]eventsource.Event, error) {
	return o.Cancel("customer asked", time.Now())
}

// legacyRow is what the monolith's orders table holds of an order.
func (r *rig) legacyRow(id int64) (status, version, lines int) {
	r.t.Helper()
	var row struct{ Status, Version, Lines int }
	changefeedtest.Must(r.t, r.shop.DB().Raw("SELECT status, version, (SELECT COUNT(*) FROM order_lines WHERE order_id = ?) AS lines FROM orders WHERE id = ?", id, id).Scan(&row).Error)
	return row.Status, row.Version, row.Lines
}

// streamTypes lists the event types of order id's stream in the service's
// event store.
func (r *rig) streamTypes(id int64) []string {
	r.t.Helper()
	var types []string
	changefeedtest.Must(r.t, r.svc.Raw("SELECT type FROM es_events WHERE aggregate_type = 'order' AND aggregate_id = ? ORDER BY version", domain.AggregateID(id)).Pluck("type", &types).Error)
	return types
}

// outboxOrigins counts the outbox rows of order id in gdb by origin.
func outboxOrigins(t *testing.T, gdb *gorm.DB, id int64) map[string]int {
	t.Helper()
	var rows []struct {
		Origin string
		N      int
	}
	changefeedtest.Must(t, gdb.Raw("SELECT origin, COUNT(*) AS n FROM outbox WHERE aggregatetype = 'order' AND aggregateid = ? GROUP BY origin", domain.AggregateID(id)).Scan(&rows).Error)
	out := map[string]int{}
	for _, r := range rows {
		out[r.Origin] = r.N
	}
	return out
}

func mustNoDrift(t *testing.T, rep *verify.Report, what string) {
	t.Helper()
	if rep.Drift || rep.SourceRows == 0 || rep.SourceRows != rep.TargetRows {
		t.Fatalf("%s: drift %v, %d vs %d rows, missing %v, extra %v, changed %+v, errors %+v", what, rep.Drift, rep.SourceRows, rep.TargetRows, rep.Missing, rep.Extra, rep.Changed, rep.Errors)
	}
}

// TestBackfillVerify backfills a monolith whose history is not in the
// broker (its outbox emptied): every order, in each status, arrives in the
// service's event store as one order.imported under its legacy id, and
// verify finds no drift. A second, restarted backfill imports nothing
// again. A corrupted row on either side, in the orders table, its lines or
// the read model, is reported as drift on that key and column.
func TestBackfillVerify(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		placed := []aclorders.LegacyOrder{r.place(1), r.place(2), r.place(3), r.place(4)}
		r.move(placed[1].ID, "pay")
		r.move(placed[2].ID, "pay")
		r.move(placed[2].ID, "ship")
		r.move(placed[3].ID, "cancel")
		changefeedtest.Must(t, r.shop.DB().Exec("DELETE FROM outbox").Error)
		if res := r.backfill(false); res.Events != int64(len(placed)) {
			t.Fatalf("backfill wrote %d events for %d orders", res.Events, len(placed))
		}
		r.start()
		r.settle()
		mustNoDrift(t, r.verify(verify.Options{}), "after the backfill")
		for _, o := range placed {
			if got := r.streamTypes(o.ID); fmt.Sprint(got) != "[order.imported]" {
				t.Fatalf("order %d's stream: %v, want one order.imported", o.ID, got)
			}
		}
		if applied, _ := r.fwd.Stats(); applied != int64(len(placed)) {
			t.Fatalf("forward sync applied %d events, want %d", applied, len(placed))
		}
		r.backfill(true)
		changefeedtest.Eventually(t, 60*time.Second, func() (bool, string) {
			applied, _ := r.fwd.Stats()
			return applied == int64(2*len(placed)), fmt.Sprintf("forward sync applied %d of %d", applied, 2*len(placed))
		})
		for _, o := range placed {
			if got := r.streamTypes(o.ID); fmt.Sprint(got) != "[order.imported]" {
				t.Fatalf("order %d's stream after a second backfill: %v", o.ID, got)
			}
		}

		id := placed[1].ID
		corruptions := []struct {
			name          string
			gdb           *gorm.DB
			corrupt, undo string
			column        string
			missing       bool
		}{
			{"monolith total", r.shop.DB(), "UPDATE orders SET total_cents = total_cents + 1 WHERE id = ?", "UPDATE orders SET total_cents = total_cents - 1 WHERE id = ?", "total_cents", false},
			{"monolith status", r.shop.DB(), "UPDATE orders SET status = 30 WHERE id = ?", "UPDATE orders SET status = 20 WHERE id = ?", "status", false},
			{"monolith line", r.shop.DB(), "UPDATE order_lines SET product_name = 'tampered' WHERE order_id = ? AND line_no = 2", "", "lines", false},
			{"service customer", r.svc, "UPDATE order_views SET customer_id = 2 WHERE id = ?", "UPDATE order_views SET customer_id = 1 WHERE id = ?", "customer_id", false},
			{"service status", r.svc, "UPDATE order_views SET status = 'cancelled' WHERE id = ?", "UPDATE order_views SET status = 'paid' WHERE id = ?", "status", false},
			{"service row", r.svc, "DELETE FROM order_views WHERE id = ?", "", "", true},
		}
		for _, c := range corruptions {
			var name string
			if c.name == "monolith line" {
				changefeedtest.Must(t, r.shop.DB().Raw("SELECT product_name FROM order_lines WHERE order_id = ? AND line_no = 2", id).Pluck("product_name", &name).Error)
			}
			changefeedtest.Must(t, c.gdb.Exec(c.corrupt, id).Error)
			rep, err := aclorders.Verify(context.Background(), r.shop.DB(), r.svc, verify.Options{})
			changefeedtest.Must(t, err)
			key := fmt.Sprint(id)
			switch {
			case !rep.Drift:
				t.Fatalf("%s: no drift reported", c.name)
			case c.missing && (rep.MissingCount != 1 || rep.Missing[0] != key):
				t.Fatalf("%s: missing %v, want [%s]", c.name, rep.Missing, key)
			case !c.missing && (rep.ChangedCount != 1 || rep.Changed[0].Key != key || len(rep.Changed[0].Columns) != 1 || rep.Changed[0].Columns[0].Column != c.column):
				t.Fatalf("%s: changed %+v, want %s in %s", c.name, rep.Changed, key, c.column)
			}
			switch {
			case c.name == "monolith line":
				changefeedtest.Must(t, r.shop.DB().Exec("UPDATE order_lines SET product_name = ? WHERE order_id = ? AND line_no = 2", name, id).Error)
			case c.missing:
				// The projections rebuild the row from the event store.
				changefeedtest.Must(t, r.svc.Exec("DELETE FROM es_checkpoints").Error)
				changefeedtest.Must(t, r.svc.Exec("DELETE FROM order_views").Error)
				changefeedtest.Must(t, r.svc.Exec("DELETE FROM orders_by_customer").Error)
				changefeedtest.Must(t, r.svc.Exec("DELETE FROM orders_by_status").Error)
			default:
				changefeedtest.Must(t, c.gdb.Exec(c.undo, id).Error)
			}
			mustNoDrift(t, r.verify(verify.Options{}), "after undoing "+c.name)
		}
	})
}

// TestTwoWaySync runs both syncs at once over the broker. A monolith order
// and its payment reach the service's event store (forward); an order the
// service places, pays and ships, and a monolith order it cancels, reach
// the monolith's tables (back). Neither side's change comes back to it:
// the service's stream of a monolith order holds its import and its
// payment once, the monolith's outbox holds no event of the service's
// order, and the monolith's row versions count each change once.
func TestTwoWaySync(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		r.start()
		mono := r.place(2)
		r.settle()
		r.move(mono.ID, "pay")
		r.settle()
		if got := r.streamTypes(mono.ID); fmt.Sprint(got) != "[order.imported order.paid]" {
			t.Fatalf("forward: order %d's stream %v", mono.ID, got)
		}

		// The ownership flip: the service takes the writes.
		other := r.place(1)
		r.settle()
		svcOrder := r.servicePlace(mono)
		r.serviceMove(svcOrder.ID, pay)
		r.serviceMove(svcOrder.ID, ship)
		r.serviceMove(other.ID, cancel)
		r.settle()
		if st, v, lines := r.legacyRow(svcOrder.ID); st != 30 || v != 3 || lines != len(mono.Lines) {
			t.Fatalf("back: service order %d in the monolith: status %d v%d, %d lines; want 30 v3 and %d", svcOrder.ID, st, v, lines, len(mono.Lines))
		}
		if st, v, _ := r.legacyRow(other.ID); st != 90 || v != 2 {
			t.Fatalf("back: monolith order %d: status %d v%d, want 90 v2", other.ID, st, v)
		}
		if st, v, _ := r.legacyRow(mono.ID); st != 20 || v != 2 {
			t.Fatalf("monolith order %d: status %d v%d, want 20 v2", mono.ID, st, v)
		}

		// No echo, on either side.
		for _, c := range []struct {
			id   int64
			want string
		}{
			{mono.ID, "[order.imported order.paid]"},
			{other.ID, "[order.imported order.cancelled]"},
			{svcOrder.ID, "[order.placed order.paid order.shipped]"},
		} {
			if got := r.streamTypes(c.id); fmt.Sprint(got) != c.want {
				t.Errorf("order %d's stream in the service: %v, want %s", c.id, got, c.want)
			}
		}
		if got := outboxOrigins(t, r.shop.DB(), svcOrder.ID); len(got) != 0 {
			t.Errorf("the monolith's outbox has events of the service's order: %v", got)
		}
		if got := outboxOrigins(t, r.shop.DB(), other.ID); fmt.Sprint(got) != "map[monolith:1]" {
			t.Errorf("the monolith's outbox has %v for order %d, want only its own placement", got, other.ID)
		}
		if got := outboxOrigins(t, r.svc, mono.ID); fmt.Sprint(got) != "map[monolith:2]" {
			t.Errorf("the service's outbox has %v for monolith order %d, want its 2 events tagged as the monolith's", got, mono.ID)
		}
		if got := outboxOrigins(t, r.svc, svcOrder.ID); fmt.Sprint(got) != "map[orders-service:3]" {
			t.Errorf("the service's outbox has %v for its order %d", got, svcOrder.ID)
		}
		if n := r.back.Applied(); n != 4 {
			t.Errorf("the back sync applied %d events, want 4 (placed, paid, shipped, cancelled)", n)
		}
	})
}

// TestRollbackKeepsIDsApart rolls the ownership back while a saga of the
// service holds an order id whose order is not placed yet, and the
// monolith takes writes again: the monolith's next order must not take
// that id (on SQLite its AUTOINCREMENT continues after the largest id in
// its table, which the back sync fills with the service's), and once the
// saga's order is placed and both sides have synced, the copies agree. A
// flip again gives the service ids the monolith did not take.
func TestRollbackKeepsIDsApart(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		r.start()
		tmpl := r.place(1)
		r.settle()
		// The flip: the service places an order, which the back sync
		// writes to the monolith's tables, and a saga takes the next id.
		r.servicePlace(tmpl)
		r.settle()
		ctx := context.Background()
		inFlight, err := r.ids.Next(ctx)
		changefeedtest.Must(t, err)
		// The rollback: the monolith places orders, then the saga's order
		// is placed.
		mono := r.place(1)
		if mono.ID == inFlight {
			t.Fatalf("the monolith's order after the rollback took id %d, which the service's saga holds", mono.ID)
		}
		r.servicePlaceAs(inFlight, tmpl)
		r.settle()
		// The flip again, while the monolith's last order is still on its
		// way through the forward sync: the service's next id is one the
		// monolith has not used.
		last := r.place(1)
		next, err := r.ids.Next(ctx)
		changefeedtest.Must(t, err)
		if next == last.ID || next <= mono.ID {
			t.Fatalf("after the monolith's orders %d and %d the service's next id is %d", mono.ID, last.ID, next)
		}
		r.servicePlaceAs(next, tmpl)
		r.settle()
	})
}

// TestPlanPhases walks the orders plan through every phase and back, with
// real parts, doing at each what the plan's components do: before sync
// the service has no copy; sync backfills and starts both syncs; up to
// canary the monolith takes the writes (the proxy sends it them, reads
// shadowed or canaried); from flip the service does, and at retire the
// monolith's write path is off. Each phase is entered with a write of its
// owner, one that changes an order the other side placed included, and
// must end with zero drift. Rolled back, the monolith takes writes again,
// also on orders the service placed.
func TestPlanPhases(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		plan := extracted.OrdersPlan()
		var monoOpen, svcOpen []int64
		// The service prices its orders as the monolith priced this one.
		tmpl := r.place(1)
		for _, p := range []phase.Phase{phase.Legacy, phase.Sync, phase.Shadow, phase.Canary, phase.Flip, phase.Retire,
			phase.Flip, phase.Canary, phase.Shadow, phase.Sync, phase.Legacy} {
			t.Logf("phase %s", p)
			rt := phase.RoutingFor(p, 0)
			owner := p >= phase.Flip
			if (rt.Writes == "extracted") != owner || plan.WriteRoutes == plan.ReadRoutes || plan.WriteRoutes == "" {
				t.Fatalf("phase %s: the plan routes writes %s with %q / %q", p, rt.Writes, plan.ReadRoutes, plan.WriteRoutes)
			}
			changefeedtest.Must(t, r.shop.RetireWrites("orders", p >= phase.Retire))
			if p == phase.Retire {
				r.shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{map[string]any{"sku": "COF-ETH-250", "quantity": 1}}}).Expect(http.StatusConflict)
			}
			if owner {
				o := r.servicePlace(tmpl)
				r.serviceMove(o.ID, pay)
				svcOpen = append(svcOpen, o.ID)
				if len(monoOpen) > 0 {
					r.serviceMove(monoOpen[0], cancel)
					monoOpen = monoOpen[1:]
				}
			} else {
				o := r.place(1)
				r.move(o.ID, "pay")
				monoOpen = append(monoOpen, o.ID)
				if len(svcOpen) > 0 {
					r.move(svcOpen[0], "ship")
					svcOpen = svcOpen[1:]
				}
			}
			if p == phase.Legacy && r.broker == nil {
				// Before the sync phase the service has no copy.
				if rep := r.verify(verify.Options{}); !rep.Drift || rep.TargetRows != 0 {
					t.Fatalf("legacy: the service has %d orders, drift %v", rep.TargetRows, rep.Drift)
				}
				continue
			}
			if p == phase.Sync && r.broker == nil {
				r.backfill(false)
				r.start()
			}
			r.settle()
		}
		if n := r.back.Applied(); n == 0 {
			t.Fatal("the back sync applied nothing")
		}
	})
}

// TestReconcile derives the service's events from a legacy order: an
// import for an order it does not have, the status changes in lifecycle
// order (both when the monolith's payment and shipment arrive together),
// none when it is as the monolith has it, and a stale status refused.
func TestReconcile(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	legacy := func(st aclorders.State) aclorders.Order {
		return aclorders.Order{ID: 7, CustomerID: 3, CustomerEmail: "c@example.com", State: st, Currency: "EUR", PlacedAt: at, UpdatedAt: at.Add(time.Hour),
			Lines: []aclorders.Line{{No: 2, SKU: "B", UnitPriceCents: 100, Quantity: 1, Warehouse: "AMS1"}, {No: 1, SKU: "A", UnitPriceCents: 250, Quantity: 2, Warehouse: "AMS1"}}}
	}
	fold := func(t *testing.T, evs []eventsource.Event) domain.Order {
		t.Helper()
		var o domain.Order
		for i, ev := range evs {
			ev.Version = int64(i + 1)
			var err error
			if o, err = domain.Apply(o, ev); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	imported, ok, err := aclorders.Reconcile(domain.Order{}, legacy(aclorders.StatePlaced))
	if err != nil || !ok || len(imported) != 1 || imported[0].Type != domain.EventImported {
		t.Fatalf("import: %v, %v, %v", imported, ok, err)
	}
	base := fold(t, imported)
	if base.TotalCents != 600 || base.Lines[0].SKU != "A" || base.Lines[1].LineTotalCents != 100 {
		t.Fatalf("imported order %+v", base)
	}
	payment, err := base.Pay(at)
	changefeedtest.Must(t, err)
	paid := fold(t, append(imported, payment...))
	tests := []struct {
		name   string
		cur    domain.Order
		to     aclorders.State
		types  string
		ok     bool
		status domain.Status
	}{
		{"same", base, aclorders.StatePlaced, "[]", true, domain.StatusPlaced},
		{"paid", base, aclorders.StatePaid, "[order.paid]", true, domain.StatusPaid},
		{"paid and shipped at once", base, aclorders.StateShipped, "[order.paid order.shipped]", true, domain.StatusShipped},
		{"shipped", paid, aclorders.StateShipped, "[order.shipped]", true, domain.StatusShipped},
		{"cancelled while paid", paid, aclorders.StateCancelled, "[order.cancelled]", true, domain.StatusCancelled},
		{"stale: placed after paid", paid, aclorders.StatePlaced, "[]", false, domain.StatusPaid},
	}
	for _, tt := range tests {
		evs, ok, err := aclorders.Reconcile(tt.cur, legacy(tt.to))
		if err != nil || ok != tt.ok {
			t.Fatalf("%s: ok %v, %v", tt.name, ok, err)
		}
		var types []string
		o := tt.cur
		for _, ev := range evs {
			types = append(types, ev.Type)
			ev.Version = o.Version + 1
			if o, err = domain.Apply(o, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got := fmt.Sprint(types); got != tt.types || o.Status != tt.status {
			t.Errorf("%s: %s leaving %s, want %s leaving %s", tt.name, got, o.Status, tt.types, tt.status)
		}
	}
	if _, _, err := aclorders.Reconcile(base, legacy("lost")); err == nil {
		t.Error("an unknown state reconciled")
	}
}

// TestSyncRefuses: the forward sync skips the service's own events on
// the shared topic and dead-letters a payload it cannot read; the back
// sync skips events that started in the monolith and dead-letters a
// status change the monolith's tables cannot take.
func TestSyncRefuses(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		o := r.place(1)
		ev := func(source, origin, typ string, id int64, payload string) changefeed.Event {
			return changefeed.Event{ID: uuid.Must(uuid.NewV7()), Source: source, Origin: origin, AggregateType: "order",
				AggregateID: fmt.Sprint(id), Type: typ, OccurredAt: time.Now().UTC(), Payload: []byte(payload)}
		}
		legacyPayload := fmt.Sprintf(`{"id":%d,"customer_id":1,"status":10,"currency":"EUR","total_cents":0,"placed_at":"2026-03-01T10:00:00Z","lines":[]}`, o.ID)
		for _, e := range []changefeed.Event{
			ev(domain.Source, domain.Source, aclorders.OrderPlaced, o.ID, legacyPayload),
			ev(domain.Source, aclorders.LegacyOrigin, aclorders.OrderPaid, o.ID, `{"at":"2026-03-01T10:00:00Z"}`),
		} {
			changefeedtest.Must(t, apply(t, r.svc, r.fwd.Handle, e))
		}
		if got := r.streamTypes(o.ID); len(got) != 0 {
			t.Fatalf("the forward sync applied the service's own events: %v", got)
		}
		if err := apply(t, r.svc, r.fwd.Handle, ev("monolith.orders", "monolith", aclorders.OrderPaid, o.ID, `{"id":"x"}`)); !errors.Is(err, consumer.ErrPermanent) {
			t.Fatalf("a malformed order event: %v, want a permanent error", err)
		}

		back := func(e changefeed.Event) error {
			return db.Transact(ctx, r.shop.DB(), func(ctx context.Context) error { return r.back.Handle(ctx, db.Conn(ctx, r.shop.DB()), e) })
		}
		changefeedtest.Must(t, back(ev(domain.Source, aclorders.LegacyOrigin, domain.EventCancelled, o.ID, `{"at":"2026-03-01T10:00:00Z"}`)))
		if st, v, _ := r.legacyRow(o.ID); st != 10 || v != 1 {
			t.Fatalf("the back sync applied an event of the monolith's origin: status %d v%d", st, v)
		}
		for _, e := range []changefeed.Event{
			ev(domain.Source, domain.Source, domain.EventShipped, o.ID, `{"at":"2026-03-01T10:00:00Z"}`),
			ev(domain.Source, domain.Source, domain.EventPaid, 424242, `{"at":"2026-03-01T10:00:00Z"}`),
		} {
			if err := back(e); !errors.Is(err, aclorders.ErrBackSync) || !errors.Is(err, consumer.ErrPermanent) {
				t.Fatalf("%s of order %s: %v, want a permanent ErrBackSync", e.Type, e.AggregateID, err)
			}
		}
		changefeedtest.Must(t, back(ev(domain.Source, domain.Source, domain.EventPaid, o.ID, `{"at":"2026-03-01T10:00:00Z"}`)))
		if st, v, _ := r.legacyRow(o.ID); st != 20 || v != 2 {
			t.Fatalf("after the service's payment: status %d v%d, want 20 v2", st, v)
		}
	})
}

// TestForwardBatchOfOneOrder applies several monolith events in one
// transaction, as the forward sync's consumer does with a batch, two of
// them of the same order: the second must find the first's import (the
// event store queues appends to the commit on Postgres) and become the
// order's payment, not a second import.
func TestForwardBatchOfOneOrder(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		first, other := r.place(1), r.place(2)
		event := func(typ string, o aclorders.LegacyOrder) changefeed.Event {
			payload, err := json.Marshal(o)
			changefeedtest.Must(t, err)
			return changefeed.Event{ID: uuid.Must(uuid.NewV7()), Source: "monolith.orders", Origin: aclorders.LegacyOrigin, AggregateType: "order",
				AggregateID: fmt.Sprint(o.ID), Type: typ, OccurredAt: time.Now().UTC(), Payload: payload}
		}
		paid := first
		paid.Status, paid.Version = aclorders.LegacyPaid, first.Version+1
		at := first.PlacedAt.Add(time.Minute)
		paid.PaidAt = &at
		err := db.Transact(ctx, r.svc, func(ctx context.Context) error {
			for _, ev := range []changefeed.Event{event(aclorders.OrderPlaced, first), event(aclorders.OrderPlaced, other), event(aclorders.OrderPaid, paid)} {
				if err := r.fwd.Handle(ctx, db.Conn(ctx, r.svc), ev); err != nil {
					return err
				}
			}
			return nil
		})
		changefeedtest.Must(t, err)
		if got, want := r.streamTypes(first.ID), []string{domain.EventImported, domain.EventPaid}; !slices.Equal(got, want) {
			t.Errorf("order %d's stream: %v, want %v", first.ID, got, want)
		}
		if got, want := r.streamTypes(other.ID), []string{domain.EventImported}; !slices.Equal(got, want) {
			t.Errorf("order %d's stream: %v, want %v", other.ID, got, want)
		}
		if applied, stale := r.fwd.Stats(); applied != 3 || stale != 0 {
			t.Errorf("forward sync applied %d and found %d stale, want 3 and 0", applied, stale)
		}
	})
}

// TestBackfillResumes interrupts the orders backfill after its first
// chunk: the second run resumes after it, and between them every order
// is snapshotted once, so the service imports each once and verify finds
// no drift.
func TestBackfillResumes(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		for qty := 1; qty <= 5; qty++ {
			r.place(qty)
		}
		changefeedtest.Must(t, r.shop.DB().Exec("DELETE FROM outbox").Error)
		job := aclorders.OrdersBackfillJob()
		job.ChunkSize = 2
		ctx, cancel := context.WithCancel(context.Background())
		chunks := 0
		first, err := backfill.Run(ctx, job, backfill.Options{DB: r.shop.DB(), Map: aclorders.LinesMap(r.shop.DB()), Logger: changefeedtest.Logger(),
			OnChunk: func(context.Context, []string) {
				if chunks++; chunks == 2 {
					cancel()
				}
			}})
		cancel()
		if err == nil || first.Done {
			t.Fatalf("interrupted backfill: %+v, %v", first, err)
		}
		second, err := backfill.Run(context.Background(), job, backfill.Options{DB: r.shop.DB(), Map: aclorders.LinesMap(r.shop.DB()), Logger: changefeedtest.Logger()})
		if err != nil || !second.Done || !second.Resumed {
			t.Fatalf("resumed backfill: %+v, %v", second, err)
		}
		var snapshots int64
		changefeedtest.Must(t, r.shop.DB().Raw("SELECT COUNT(*) FROM outbox WHERE type = ?", aclorders.OrderSnapshot).Scan(&snapshots).Error)
		if snapshots != 5 {
			t.Fatalf("%d snapshots of 5 orders (first run %+v, second %+v)", snapshots, first, second)
		}
		r.start()
		r.settle()
		var imported int64
		changefeedtest.Must(t, r.svc.Raw("SELECT COUNT(*) FROM es_events WHERE type = ?", domain.EventImported).Scan(&imported).Error)
		if imported != 5 {
			t.Fatalf("%d orders imported, want 5", imported)
		}
	})
}

// TestBackSyncUpcasts: an order.placed that an older release of the
// service wrote at schema version 1 (the golden payload of
// extracted/orders/domain/testdata, money as decimal strings and no
// currency), stored with its outbox copy as that release stored it, and
// a payment on top of it, reach the monolith's tables upcast: the totals
// in cents and the currency, the lines whole, and verify finds no drift
// against the read model. An order.placed of a newer version than this
// release knows is dead-lettered, not written.
func TestBackSyncUpcasts(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		golden, err := os.ReadFile(filepath.Join("..", "..", "extracted", "orders", "domain", "testdata", "order.placed.v1.json"))
		changefeedtest.Must(t, err)
		var v1 map[string]any
		changefeedtest.Must(t, json.Unmarshal(golden, &v1))
		id, err := r.ids.Next(ctx)
		changefeedtest.Must(t, err)
		v1["id"] = id
		payload, err := json.Marshal(v1)
		changefeedtest.Must(t, err)
		// The older release's store: no upcasters, the event as it wrote it.
		old, err := eventsource.NewStore(r.svc, eventsource.Options{AggregateType: domain.AggregateType, Outbox: &outbox.Writer{Source: domain.Source}})
		changefeedtest.Must(t, err)
		_, err = old.Append(ctx, domain.AggregateID(id), 0, eventsource.Event{Type: domain.EventPlaced, SchemaVersion: 1, Payload: payload})
		changefeedtest.Must(t, err)
		r.serviceMove(id, pay)
		r.start()
		r.settle()

		var row struct {
			Status     int
			Currency   string
			TotalCents int64
			Version    int
		}
		changefeedtest.Must(t, r.shop.DB().Raw("SELECT status, currency, total_cents, version FROM orders WHERE id = ?", id).Scan(&row).Error)
		if row.Status != 20 || row.Currency != "EUR" || row.TotalCents != 3570 || row.Version != 2 {
			t.Fatalf("the monolith's row of order %d: %+v, want status 20, EUR, 3570 cents, v2", id, row)
		}
		var lines []struct {
			SKU            string
			UnitPriceCents int64
			LineTotalCents int64
		}
		changefeedtest.Must(t, r.shop.DB().Raw("SELECT sku, unit_price_cents, line_total_cents FROM order_lines WHERE order_id = ? ORDER BY line_no", id).Scan(&lines).Error)
		if fmt.Sprint(lines) != "[{COF-ETH-250 1290 2580} {TEA-SEN-100 990 990}]" {
			t.Errorf("the monolith's lines of order %d: %v", id, lines)
		}
		if n := r.back.Applied(); n != 2 {
			t.Errorf("the back sync applied %d events, want 2 (placed, paid)", n)
		}

		future := changefeed.Event{ID: uuid.Must(uuid.NewV7()), Source: domain.Source, Origin: domain.Source, AggregateType: domain.AggregateType,
			AggregateID: domain.AggregateID(id + 1), Type: domain.EventPlaced, SchemaVersion: 3, OccurredAt: time.Now().UTC(), Payload: payload}
		err = db.Transact(ctx, r.shop.DB(), func(ctx context.Context) error { return r.back.Handle(ctx, db.Conn(ctx, r.shop.DB()), future) })
		var unknown *eventsource.UnknownVersionError
		if !errors.As(err, &unknown) || !errors.Is(err, consumer.ErrPermanent) {
			t.Fatalf("back sync of an order.placed v3: %v, want a permanent UnknownVersionError", err)
		}
		if _, _, lines := r.legacyRow(id + 1); lines != 0 {
			t.Errorf("the back sync wrote %d lines of the order.placed v3", lines)
		}
	})
}
