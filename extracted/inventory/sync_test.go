package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	"github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// siblingDSN returns a fresh database of the same engine as dsn: the
// service's own, next to the monolith's.
func siblingDSN(t *testing.T, dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return dbtest.SQLiteDSN(t)
	}
	return dbtest.PostgresDSN(t)
}

// drift compares the monolith's stock with the service's copy through the
// ACL's verify check.
func drift(t *testing.T, shop *shoptest.Shop, svc *inventory.Service) (bool, string) {
	t.Helper()
	ch := aclinv.VerifyCheck("")
	rep, err := verify.Compare(context.Background(),
		verify.Side{DB: shop.DB(), Table: ch.Source.Table, Key: ch.Source.Key},
		verify.Side{DB: svc.DB(), Table: ch.Target.Table, Key: ch.Target.Key},
		ch.Mapping(), verify.Options{})
	if err != nil {
		return false, err.Error()
	}
	if rep.SourceRows == 0 {
		return false, "the monolith has no stock"
	}
	var b strings.Builder
	_ = rep.WriteText(&b)
	return !rep.Drift, b.String()
}

func count(t *testing.T, shop *shoptest.Shop, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := shop.DB().Raw(sql, args...).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSyncAndFlip runs the extraction's data path over real parts: the
// monolith with its seed data, whose events are thrown away so that only a
// backfill can give the service its first copy; the monolith's relay to the
// broker over TCP; the service with its forward sync, its own relay and the
// back sync. It checks zero drift while the service is a read replica,
// then flips ownership and checks that the service's writes (its own and
// the orders' reservations through the ACL client) reach the monolith's
// tables, again with zero drift, and that nothing loops.
func TestSyncAndFlip(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log := changefeedtest.Logger()
		broker := changefeedtest.NewBroker(t)
		kafka := changefeed.KafkaConfig{TopicPrefix: "it", Partitions: 3}
		kafka.SetDefaults("")

		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		if err := shop.DB().Exec("DELETE FROM outbox").Error; err != nil {
			t.Fatal(err)
		}
		for _, job := range aclinv.BackfillJobs() {
			job.SetDefaults()
			res, err := backfill.Run(ctx, job, backfill.Options{DB: shop.DB(), Logger: log})
			if err != nil || res.Events == 0 {
				t.Fatalf("backfill %s: %+v, %v", job.Name, res, err)
			}
		}
		rl, err := relay.New(relay.Config{Name: "monolith"}, relay.Options{DB: shop.DB(), Brokers: broker.Brokers(), Kafka: kafka, Logger: log})
		changefeedtest.Must(t, err)
		done := make(chan error, 2)
		go func() { done <- rl.Run(ctx) }()

		svc := newService(t, siblingDSN(t, dsn), func(c *inventory.Config, o *inventory.Options) {
			c.Sync.BackSyncDSN = dsn
			o.Brokers, o.Kafka, o.Logger = broker.Brokers(), kafka, log
		})
		go func() { done <- svc.Run(ctx) }()
		select {
		case <-svc.Started():
		case err := <-done:
			t.Fatalf("run: %v", err)
		}

		// Phase 1: the monolith writes, the service follows.
		var p catalog.Product
		shop.Get("/api/catalog/products/3").Expect(http.StatusOK).Decode(&p)
		shop.Post("/api/inventory/stock/"+p.Ref+"/adjustments", map[string]any{"warehouse": "BER1", "delta": 40, "reason": "delivery"}).Expect(http.StatusOK)
		for i := 0; i < 5; i++ {
			shop.Post("/api/orders", map[string]any{"customer_id": 1 + i, "lines": []map[string]any{{"sku": p.SKU, "quantity": 2}}}).Expect(http.StatusCreated)
		}
		var order struct {
			ID int64 `json:"id"`
		}
		shop.Post("/api/orders", map[string]any{"customer_id": 7, "lines": []map[string]any{{"sku": p.SKU, "quantity": 1}}}).Expect(http.StatusCreated).Decode(&order)
		shop.Post(fmt.Sprintf("/api/orders/%d/cancel", order.ID), nil).Expect(http.StatusOK)
		changefeedtest.Eventually(t, 60*time.Second, func() (bool, string) { return drift(t, shop, svc) })
		if _, parked, _ := svc.Forward().Stats(); parked != 0 {
			t.Errorf("%d stock events still parked", parked)
		}
		applied, _, _ := svc.Forward().Stats()
		if got := forwardMetric(t, svc, "applied"); applied == 0 || got != float64(applied) {
			t.Errorf("/metrics shows %v stock events applied, the forward sync %d", got, applied)
		}
		readOnly, err := http.Post("http://"+svc.Addr()+"/api/inventory/stock/"+p.Ref+"/adjustments", "application/json",
			strings.NewReader(`{"warehouse":"BER1","delta":1}`))
		changefeedtest.Must(t, err)
		readOnly.Body.Close()
		if readOnly.StatusCode != http.StatusConflict {
			t.Fatalf("a write to the read replica got %d, want 409 not-owner", readOnly.StatusCode)
		}

		// Phase 4: the ownership flip. The monolith's events have all been
		// applied (zero drift above), so the service takes over.
		stockEventsBefore := count(t, shop, "SELECT COUNT(*) FROM outbox WHERE aggregatetype = 'stock'")
		changefeedtest.Must(t, svc.SetOwner(ctx, true))
		cl, err := client.New(client.Config{BaseURL: "http://" + svc.Addr()})
		changefeedtest.Must(t, err)
		shop.SetInventoryAPI(cl)
		resp, err := http.Post("http://"+svc.Addr()+"/api/inventory/stock/"+p.Ref+"/adjustments", "application/json",
			strings.NewReader(`{"warehouse":"MAD1","delta":25,"reason":"service delivery"}`))
		changefeedtest.Must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("adjust at the owner: %d", resp.StatusCode)
		}
		for i := 0; i < 4; i++ {
			shop.Post("/api/orders", map[string]any{"customer_id": 2 + i, "lines": []map[string]any{{"sku": p.SKU, "quantity": 3}}}).Expect(http.StatusCreated).Decode(&order)
		}
		shop.Post(fmt.Sprintf("/api/orders/%d/cancel", order.ID), nil).Expect(http.StatusOK)
		changefeedtest.Eventually(t, 60*time.Second, func() (bool, string) {
			if n := count(t, shop, "SELECT COUNT(*) FROM inv_movements WHERE reference = 'service delivery'"); n != 1 {
				return false, fmt.Sprintf("the service's adjustment is journalled %d times in the monolith", n)
			}
			return drift(t, shop, svc)
		})
		if n := count(t, shop, "SELECT COUNT(*) FROM outbox WHERE aggregatetype = 'stock'"); n != stockEventsBefore {
			t.Errorf("the monolith wrote %d stock events after the flip; the back sync must write none", n-stockEventsBefore)
		}
		var ownReservations int64
		changefeedtest.Must(t, svc.DB().Raw("SELECT COUNT(*) FROM movements WHERE kind = 'reserve' AND origin = ? AND reference LIKE 'order/%'", "inventory-service").Scan(&ownReservations).Error)
		if ownReservations != 4 {
			t.Errorf("the service made %d reservations for orders after the flip, want 4", ownReservations)
		}
		var st aclinv.ProductStock
		shop.Get("/api/inventory/stock/" + p.Ref).Expect(http.StatusOK).Decode(&st)
		if st.Reserved == 0 {
			t.Errorf("the monolith's tables show no reservations: %+v", st)
		}
		// A corrupted row on one side shows as drift.
		changefeedtest.Must(t, svc.DB().Exec("UPDATE items SET on_hand = on_hand + 1 WHERE warehouse = 'es-mad'").Error)
		if ok, report := drift(t, shop, svc); ok {
			t.Errorf("verify found no drift after a corruption:\n%s", report)
		}
		cancel()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		}
	})
}

// forwardMetric reads the forward sync's stock event counter for outcome
// from the service's metrics registry, as /metrics serves it.
func forwardMetric(t *testing.T, svc *inventory.Service, outcome string) float64 {
	t.Helper()
	mfs, err := svc.Registry().Gather()
	changefeedtest.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "strangler_acl_inventory_forward_stock_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no strangler_acl_inventory_forward_stock_events_total{outcome=%q} in the service's metrics", outcome)
	return 0
}
