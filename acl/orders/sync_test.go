package orders_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/acl/inventory"
	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// serviceDB is a fresh orders service database with the ACL's set and the
// inbox, and a stand-in for the service's orders: id, customer and the
// e-mail copy, which OnEmailChange keeps up to date.
func serviceDB(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	gdb := changefeedtest.Open(t, dsn, aclorders.Migrations(), consumer.Migrations())
	changefeedtest.Must(t, gdb.Exec("CREATE TABLE svc_orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, customer_email TEXT NOT NULL)").Error)
	return gdb
}

// updateOrders is the stand-in service's OnEmailChange: it sets the e-mail
// on the customer's orders.
func updateOrders(_ context.Context, tx *gorm.DB, cmd aclorders.UpdateCustomerEmail) error {
	return tx.Exec("UPDATE svc_orders SET customer_email = ? WHERE customer_id = ?", cmd.Email, cmd.CustomerID).Error
}

func apply(t *testing.T, gdb *gorm.DB, h consumer.Handler, ev changefeed.Event) error {
	t.Helper()
	return db.Transact(context.Background(), gdb, func(ctx context.Context) error { return h(ctx, db.Conn(ctx, gdb), ev) })
}

func orderEmail(t *testing.T, gdb *gorm.DB, id int64) string {
	t.Helper()
	var emails []string
	changefeedtest.Must(t, gdb.Raw("SELECT customer_email FROM svc_orders WHERE id = ?", id).Pluck("customer_email", &emails).Error)
	if len(emails) != 1 {
		t.Fatalf("order %d: %d rows", id, len(emails))
	}
	return emails[0]
}

// TestReadModels applies the golden events to the read models: the
// customer and the price as each event leaves them, an older event after a
// newer one changing nothing, and the e-mail on the customer's orders
// following the customer's.
func TestReadModels(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := serviceDB(t, dsn)
		changefeedtest.Must(t, gdb.Exec("INSERT INTO svc_orders VALUES (1042, 17, 'anna.devries@example.nl'), (1043, 18, 'other@example.com')").Error)
		rm := aclorders.NewReadModels(gdb)
		var cmds []aclorders.UpdateCustomerEmail
		rm.OnEmailChange = func(ctx context.Context, tx *gorm.DB, cmd aclorders.UpdateCustomerEmail) error {
			cmds = append(cmds, cmd)
			return updateOrders(ctx, tx, cmd)
		}
		ctx := context.Background()
		customer := func() aclorders.Customer {
			c, ok, err := rm.Customer(ctx, 17)
			if err != nil || !ok {
				t.Fatalf("customer 17: %v, %v", ok, err)
			}
			return c
		}
		steps := []struct {
			file       string
			email      string
			status     aclorders.CustomerStatus
			version    int
			orderEmail string
			commands   int
		}{
			{"customer.created.json", "anna.devries@example.nl", aclorders.ActiveCustomer, 1, "anna.devries@example.nl", 1},
			{"customer.changed.json", "anna@devries.example.org", aclorders.ActiveCustomer, 2, "anna@devries.example.org", 2},
			// Redelivered out of order: version 1 after 2 changes nothing.
			{"customer.created.json", "anna@devries.example.org", aclorders.ActiveCustomer, 2, "anna@devries.example.org", 2},
			{"customer.changed.future.json", "anna@devries.example.org", aclorders.ActiveCustomer, 3, "anna@devries.example.org", 2},
			{"customer.deleted.json", "anna@devries.example.org", aclorders.DeletedCustomer, 3, "anna@devries.example.org", 2},
		}
		for _, s := range steps {
			changefeedtest.Must(t, apply(t, gdb, rm.HandleCustomer, readEvent(t, s.file)))
			c := customer()
			if c.Email != s.email || c.Status != s.status || c.Version != s.version || len(cmds) != s.commands {
				t.Fatalf("after %s: %+v and %d commands, want %s %s v%d and %d", s.file, c, len(cmds), s.email, s.status, s.version, s.commands)
			}
			if got := orderEmail(t, gdb, 1042); got != s.orderEmail {
				t.Fatalf("after %s: order 1042 has %s, want %s", s.file, got, s.orderEmail)
			}
		}
		if got := orderEmail(t, gdb, 1043); got != "other@example.com" {
			t.Fatalf("another customer's order changed to %s", got)
		}
		if err := apply(t, gdb, rm.HandleCustomer, readEvent(t, "customer.malformed.json")); !errors.Is(err, consumer.ErrPermanent) {
			t.Fatalf("malformed customer: %v, want a permanent error", err)
		}

		for _, s := range []struct {
			file    string
			sku     string
			cents   int64
			active  bool
			version int
		}{
			{"product.changed.json", "COF-ETH-250", 1350, true, 2},
			{"product.changed.old.json", "COF-ETH-250", 1290, true, 0},
			{"product.snapshot.json", "COF-COL-1000", 4200, false, 5},
		} {
			changefeedtest.Must(t, apply(t, gdb, rm.HandlePrice, readEvent(t, s.file)))
			p, ok, err := rm.Price(ctx, s.sku)
			if err != nil || !ok || p.PriceCents != s.cents || p.Active != s.active || p.Version != s.version {
				t.Fatalf("after %s: %+v, %v, %v", s.file, p, ok, err)
			}
		}
		if _, ok, err := rm.Price(ctx, "NOPE"); ok || err != nil {
			t.Fatalf("unknown SKU: %v, %v", ok, err)
		}
		// The inventory sync's snapshot of the same product, on the same
		// topic, has no price: it is skipped and the price stays. A
		// catalog event whose price cannot be read still fails for good.
		before, _, err := rm.Price(ctx, "COF-COL-1000")
		changefeedtest.Must(t, err)
		if err := apply(t, gdb, rm.HandlePrice, readEvent(t, "product.snapshot.inventory.json")); err != nil {
			t.Fatalf("inventory's product snapshot: %v, want it skipped", err)
		}
		if after, ok, err := rm.Price(ctx, "COF-COL-1000"); err != nil || !ok || after != before {
			t.Fatalf("after inventory's product snapshot: %+v, %v, %v; want %+v", after, ok, err, before)
		}
		for _, file := range []string{"product.malformed.json", "product.changed.negative.json"} {
			if err := apply(t, gdb, rm.HandlePrice, readEvent(t, file)); !errors.Is(err, consumer.ErrPermanent) {
				t.Fatalf("%s: %v, want a permanent error", file, err)
			}
		}
	})
}

// TestIDs gives the ids of orders placed on the service: from concurrent
// transactions, each once, all in the service's range; a rolled-back
// order gives its id back. Legacy ids from the real monolith are the
// service's aggregate ids as they are, an id out of range is refused, and
// observing an id in the service's range moves the counter past it.
func TestIDs(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := serviceDB(t, dsn)
		ids := aclorders.NewIDs(gdb)
		ctx := context.Background()
		const n = 40
		got := make([]int64, n)
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = db.Transact(ctx, gdb, func(ctx context.Context) error {
					id, err := ids.Next(ctx)
					got[i] = id
					return err
				})
			})
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i, id := range got {
			if errs[i] != nil || !aclorders.IsServiceID(id) || seen[id] || id <= aclorders.ServiceIDBase || id > aclorders.ServiceIDBase+n {
				t.Fatalf("id %d: %d, %v (seen before: %v)", i, id, errs[i], seen[id])
			}
			seen[id] = true
		}
		var rolledBack int64
		err := db.Transact(ctx, gdb, func(ctx context.Context) error {
			id, err := ids.Next(ctx)
			rolledBack = id
			if err != nil {
				return err
			}
			return errors.New("the order fails")
		})
		if err == nil || rolledBack != aclorders.ServiceIDBase+n+1 {
			t.Fatalf("rolled back: id %d, %v", rolledBack, err)
		}
		if next, err := ids.Next(ctx); err != nil || next != rolledBack {
			t.Fatalf("after the rollback: %d, %v; want %d again", next, err, rolledBack)
		}

		shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
		var legacy aclorders.LegacyOrder
		shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{map[string]any{"sku": "COF-ETH-250", "quantity": 1}}}).Expect(http.StatusCreated).Decode(&legacy)
		if aclorders.IsServiceID(legacy.ID) || aclorders.CheckID(legacy.ID) != nil {
			t.Fatalf("the monolith's order id %d is not a legacy id", legacy.ID)
		}
		o, err := aclorders.FromLegacy(legacy)
		if err != nil || o.ID != legacy.ID {
			t.Fatalf("the service's aggregate id is %d (%v), the client's %d", o.ID, err, legacy.ID)
		}
		for _, bad := range []int64{0, -1, aclorders.MaxID + 1} {
			legacy.ID = bad
			if _, err := aclorders.FromLegacy(legacy); !errors.Is(err, aclorders.ErrBadID) {
				t.Errorf("legacy id %d: %v, want ErrBadID", bad, err)
			}
		}
		changefeedtest.Must(t, ids.Observe(ctx, aclorders.ServiceIDBase+1000))
		changefeedtest.Must(t, ids.Observe(ctx, aclorders.ServiceIDBase+10))
		changefeedtest.Must(t, ids.Observe(ctx, 5))
		if next, err := ids.Next(ctx); err != nil || next != aclorders.ServiceIDBase+1000+aclorders.RollbackIDGap+1 {
			t.Fatalf("after observing %d: next %d, %v; want it RollbackIDGap past", aclorders.ServiceIDBase+1000, next, err)
		}
	})
}

// TestIDsAfterRollback writes an order with a service id into the real
// monolith's orders table, as a back sync does, then places an order on the
// monolith, as after a rollback: SQLite's AUTOINCREMENT continues in the
// service's range, Postgres's identity in the legacy one. Either way the
// service, observing the id, never hands it out.
func TestIDsAfterRollback(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		svc := serviceDB(t, dbSibling(t, dsn))
		ids := aclorders.NewIDs(svc)
		ctx := context.Background()
		place := func() int64 {
			var o aclorders.LegacyOrder
			shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{map[string]any{"sku": "COF-ETH-250", "quantity": 1}}}).Expect(http.StatusCreated).Decode(&o)
			if _, err := aclorders.FromLegacy(o); err != nil {
				t.Fatalf("the ACL refuses the monolith's order: %v", err)
			}
			changefeedtest.Must(t, ids.Observe(ctx, o.ID))
			return o.ID
		}
		first := place()
		synced, err := ids.Next(ctx)
		changefeedtest.Must(t, err)
		now := time.Now().UTC()
		changefeedtest.Must(t, shop.DB().Exec(`INSERT INTO orders (id, customer_id, customer_email, status, currency, total_cents, placed_at, version, updated_at)
VALUES (?, 1, 'anna.devries@example.nl', 10, 'EUR', 0, ?, 1, ?)`, synced, now, now).Error)
		after := place()
		want := first + 1
		if db.DialectOf(shop.DB()) == db.SQLite {
			want = synced + 1
		}
		if after != want {
			t.Fatalf("after back-synced order %d the monolith placed %d, want %d", synced, after, want)
		}
		next, err := ids.Next(ctx)
		changefeedtest.Must(t, err)
		if next == after || next == synced || next <= max(after, synced) {
			t.Fatalf("the service's next id %d; the monolith has %d and %d", next, synced, after)
		}
	})
}

// TestReadModelsFollowMonolith runs the read models as a consumer over the
// real broker, fed by the real monolith's relay: a customer's e-mail change
// reaches the read model and the e-mail on the customer's orders, and a
// price change made while the broker is down arrives once it is back.
func TestReadModelsFollowMonolith(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		svc, rm, broker := feed(t, shop, dsn)

		// A legacy order of customer 1, as the service's backfill gives it.
		var o aclorders.LegacyOrder
		shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{map[string]any{"sku": "COF-ETH-250", "quantity": 1}}}).Expect(http.StatusCreated).Decode(&o)
		changefeedtest.Must(t, svc.Exec("INSERT INTO svc_orders VALUES (?, ?, ?)", o.ID, o.CustomerID, o.CustomerEmail).Error)

		ctx := context.Background()
		changedAt := time.Now()
		shop.Patch("/api/customers/1", map[string]any{"email": "anna@new.example.org"}).Expect(http.StatusOK)
		changefeedtest.Eventually(t, 60*time.Second, func() (bool, string) {
			cu, ok, err := rm.Customer(ctx, 1)
			email := orderEmail(t, svc, o.ID)
			return err == nil && ok && cu.Email == "anna@new.example.org" && email == cu.Email,
				fmt.Sprintf("read model %+v (%v, %v), order e-mail %s", cu, ok, err, email)
		})
		t.Logf("the e-mail change reached the read model and the order within %s", time.Since(changedAt).Round(time.Millisecond))

		var before aclorders.Price
		changefeedtest.Eventually(t, 60*time.Second, func() (bool, string) {
			p, ok, err := rm.Price(ctx, "COF-ETH-250")
			before = p
			return ok && err == nil, fmt.Sprintf("price of COF-ETH-250: %+v, %v, %v", p, ok, err)
		})
		broker.Stop()
		var changed struct {
			PriceCents int64 `json:"price_cents"`
			Version    int   `json:"version"`
		}
		shop.Patch("/api/catalog/products/1", map[string]any{"price_cents": before.PriceCents + 111, "active": false}).Expect(http.StatusOK).Decode(&changed)
		broker.Start()
		changefeedtest.Eventually(t, 90*time.Second, func() (bool, string) {
			p, ok, err := rm.Price(ctx, "COF-ETH-250")
			return err == nil && ok && p.PriceCents == changed.PriceCents && !p.Active && p.Version == changed.Version,
				fmt.Sprintf("price %+v (%v, %v), want %d cents, inactive, v%d", p, ok, err, changed.PriceCents, changed.Version)
		})
	})
}

// feed runs the monolith's relay and the read models' consumer, on a
// database of its own, over a real broker.
// withoutDeadLetters turns dead-lettering off in feed's consumer: an
// event it cannot read stops it, and the test fails.
func withoutDeadLetters(c *consumer.Config) {
	off := false
	c.DeadLetter = &off
}

func feed(t *testing.T, shop *shoptest.Shop, dsn string, tune ...func(*consumer.Config)) (*gorm.DB, *aclorders.ReadModels, *changefeedtest.Broker) {
	t.Helper()
	svc := serviceDB(t, dbSibling(t, dsn))
	broker := changefeedtest.NewBroker(t)
	kafka := changefeed.KafkaConfig{TopicPrefix: "shop", Partitions: 3}
	r, err := relay.New(relay.Config{Name: "shop", PollInterval: 5 * time.Millisecond},
		relay.Options{DB: shop.DB(), Brokers: broker.Brokers(), Kafka: kafka, Logger: changefeedtest.Logger()})
	changefeedtest.Must(t, err)
	changefeedtest.Go(t, "relay", r.Run)
	cfg := aclorders.ReadModelConfig("shop")
	cfg.SessionTimeout, cfg.MaxWait = 3*time.Second, 100*time.Millisecond
	for _, f := range tune {
		f(&cfg)
	}
	c, err := consumer.New(cfg, consumer.Options{DB: svc, Brokers: broker.Brokers(), Kafka: kafka, Logger: changefeedtest.Logger()})
	changefeedtest.Must(t, err)
	rm := aclorders.NewReadModels(svc)
	rm.OnEmailChange = updateOrders
	rm.Register(c)
	changefeedtest.Go(t, "consumer", c.Run)
	return svc, rm, broker
}

// TestReadModelsBackfill fills the read models from a backfill of a
// monolith whose history is not in the broker (its outbox emptied): every
// customer and every price arrive as the monolith has them. The inventory
// sync's product snapshots, on the same topic without a price, run first
// and are skipped: the consumer runs without dead-lettering, so that one
// it could not read would stop it and fail the test.
func TestReadModelsBackfill(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		changefeedtest.Must(t, shop.DB().Exec("DELETE FROM outbox").Error)
		ctx := context.Background()
		jobs := append([]backfill.Job{inventory.BackfillJobs()[0]}, aclorders.BackfillJobs()...)
		if jobs[0].AggregateType != aclorders.ProductAggregate || jobs[0].EventType != aclorders.ProductSnapshot {
			t.Fatalf("inventory's first backfill job is %+v, want its product snapshots", jobs[0])
		}
		for _, job := range jobs {
			res, err := backfill.Run(ctx, job, backfill.Options{DB: shop.DB(), Logger: changefeedtest.Logger()})
			if err != nil || !res.Done || res.Events == 0 {
				t.Fatalf("backfill %s: %+v, %v", job.Name, res, err)
			}
		}
		svc, _, _ := feed(t, shop, dsn, withoutDeadLetters)
		type customer struct {
			ID    int64 `gorm:"column:id"`
			Email string
		}
		var want, got []customer
		changefeedtest.Must(t, shop.DB().Raw("SELECT id, email FROM customers ORDER BY id").Scan(&want).Error)
		type price struct {
			SKU        string
			PriceCents int64
			Active     bool
		}
		var wantPrices, gotPrices []price
		changefeedtest.Must(t, shop.DB().Raw("SELECT sku, price_cents, active FROM catalog_products ORDER BY sku").Scan(&wantPrices).Error)
		changefeedtest.Eventually(t, 90*time.Second, func() (bool, string) {
			changefeedtest.Must(t, svc.Raw("SELECT customer_id AS id, email FROM acl_customers ORDER BY customer_id").Scan(&got).Error)
			changefeedtest.Must(t, svc.Raw("SELECT sku, price_cents, active FROM acl_prices ORDER BY sku").Scan(&gotPrices).Error)
			return fmt.Sprint(got) == fmt.Sprint(want) && fmt.Sprint(gotPrices) == fmt.Sprint(wantPrices),
				fmt.Sprintf("read models have %d customers and %d prices, the monolith %d and %d", len(got), len(gotPrices), len(want), len(wantPrices))
		})
		if len(want) == 0 || len(wantPrices) == 0 {
			t.Fatal("the seed has no customers or products")
		}
	})
}

// dbSibling returns a second fresh database of the kind dsn names: the
// service has a database of its own.
func dbSibling(t *testing.T, dsn string) string {
	t.Helper()
	d, err := db.ParseDSN(dsn)
	changefeedtest.Must(t, err)
	if d.Dialect == db.Postgres {
		return dbtest.PostgresDSN(t)
	}
	return dbtest.SQLiteDSN(t)
}
