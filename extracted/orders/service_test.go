package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/extracted/orders/store"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/payments"
	"github.com/stranglerkit/strangler/saga"
)

// TestOrderLifecycle places, pays, ships and cancels orders on the orders
// service against a real inventory service and a real monolith (its
// payments module) on loopback, and checks each participant's side: the
// stock reserved, shipped and released, the authorization captured or
// voided, the saga completed, and reads from the read models.
func TestOrderLifecycle(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		svc, url := w.startOrders(siblingDSN(t, dsn))
		a, b := w.products[0], w.products[1]
		place := func(qa, qb int) aclorders.LegacyOrder {
			t.Helper()
			var o aclorders.LegacyOrder
			w.call(http.MethodPost, url+"/api/orders", map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{
				{"sku": a.SKU, "quantity": qa}, {"sku": b.SKU, "quantity": qb}}}).expect(http.StatusCreated).decode(&o)
			return o
		}

		o := place(2, 1)
		if !aclorders.IsServiceID(o.ID) || o.Status != aclorders.LegacyPlaced || o.Version != 1 || o.CustomerEmail != w.customer.Email {
			t.Fatalf("placed %+v: want a service id, status 10, version 1 and the customer's e-mail", o)
		}
		if want := 2*a.PriceCents + b.PriceCents; o.TotalCents != want || o.Currency != "EUR" {
			t.Errorf("total %d %s, want %d EUR", o.TotalCents, o.Currency, want)
		}
		for _, l := range o.Lines {
			if l.Warehouse != "AMS1" || l.ProductName == "" || l.ProductRef == "" {
				t.Errorf("line %+v: want warehouse AMS1 and the product's name and ref", l)
			}
		}
		if s := w.stock(a.SKU); s.Reserved != 2 {
			t.Errorf("%s reserved %d, want 2", a.SKU, s.Reserved)
		}
		auth, ok := w.authorization(placeKey(o.ID, service.StepAuthorize))
		if !ok || auth.Status != payments.StatusAuthorized || auth.AmountCents != o.TotalCents {
			t.Errorf("authorization %+v (found %v): want %d authorized", auth, ok, o.TotalCents)
		}
		sg, err := svc.Orchestrator().Get(context.Background(), service.SagaID(o.ID))
		if err != nil || sg.State != saga.Completed {
			t.Fatalf("saga %+v, %v: want completed", sg, err)
		}
		path := fmt.Sprintf("%s/api/orders/%d", url, o.ID)
		var got aclorders.LegacyOrder
		w.call(http.MethodGet, path, nil).expect(http.StatusOK).decode(&got)
		if got.ID != o.ID || got.TotalCents != o.TotalCents || len(got.Lines) != 2 {
			t.Errorf("GET %+v, want %+v", got, o)
		}

		var paid, shipped aclorders.LegacyOrder
		w.call(http.MethodPost, path+"/pay", nil).expect(http.StatusOK).decode(&paid)
		if paid.Status != aclorders.LegacyPaid || paid.PaidAt == nil || paid.Version != 2 {
			t.Errorf("paid %+v: want status 20, paid_at and version 2", paid)
		}
		if auth, _ := w.authorization(placeKey(o.ID, service.StepAuthorize)); auth.Status != payments.StatusCaptured {
			t.Errorf("after pay the authorization is %s, want captured", auth.Status)
		}
		w.call(http.MethodPost, path+"/ship", nil).expect(http.StatusOK).decode(&shipped)
		if shipped.Status != aclorders.LegacyShipped || shipped.ShippedAt == nil {
			t.Errorf("shipped %+v: want status 30", shipped)
		}
		if s := w.stock(a.SKU); s.Reserved != 0 || s.OnHand != stockOf[0]-2 {
			t.Errorf("after shipping %s holds %+v, want 0 reserved and %d on hand", a.SKU, s, stockOf[0]-2)
		}
		if p := w.call(http.MethodPost, path+"/cancel", nil).expect(http.StatusConflict).problem(); p.Type != "https://github.com/stranglerkit/strangler/blob/main/docs/problems.md#order-status" {
			t.Errorf("cancel of a shipped order: %+v, want order-status", p)
		}

		c := place(1, 2)
		var cancelled aclorders.LegacyOrder
		w.call(http.MethodPost, fmt.Sprintf("%s/api/orders/%d/cancel", url, c.ID), nil).expect(http.StatusOK).decode(&cancelled)
		if cancelled.Status != aclorders.LegacyCancelled || cancelled.CancelledAt == nil {
			t.Errorf("cancelled %+v: want status 90", cancelled)
		}
		if auth, _ := w.authorization(placeKey(c.ID, service.StepAuthorize)); auth.Status != payments.StatusVoided {
			t.Errorf("after cancel the authorization is %s, want voided", auth.Status)
		}
		open := place(1, 1)
		w.noLeak([]aclorders.LegacyOrder{shipped, cancelled, open})

		// The list comes from the read model, which follows the events.
		var page struct {
			Items []aclorders.LegacyOrder `json:"items"`
		}
		eventually(t, "the list shows the three orders as they are", func() bool {
			w.call(http.MethodGet, fmt.Sprintf("%s/api/orders?customer_id=%d", url, w.customer.ID), nil).expect(http.StatusOK).decode(&page)
			return len(page.Items) == 3 && page.Items[0].ID == open.ID && page.Items[1].Status == aclorders.LegacyCancelled && page.Items[2].Status == aclorders.LegacyShipped
		})
		w.call(http.MethodGet, url+"/api/orders?status=90", nil).expect(http.StatusOK).decode(&page)
		if len(page.Items) != 1 || page.Items[0].ID != c.ID {
			t.Errorf("status=90 lists %d orders, want 1", len(page.Items))
		}
		// The saga admin API, as `strangler sagas --service URL/v1` reads it.
		sc, err := saga.NewClient(url+"/v1", "orders-test-token")
		if err != nil {
			t.Fatal(err)
		}
		pg, err := sc.List(context.Background(), saga.Filter{State: saga.Completed})
		if err != nil || len(pg.Sagas) != 3 {
			t.Errorf("saga admin API lists %+v, %v: want the three completed placements", pg, err)
		}
		w.call(http.MethodGet, url+"/v1/sagas", nil).expect(http.StatusUnauthorized)
		w.call(http.MethodGet, url+"/api/orders/999", nil).expect(http.StatusNotFound)
		w.call(http.MethodGet, url+"/api/orders?status=15", nil).expect(http.StatusBadRequest)
	})
}

// TestPlacementCompensates has the saga's steps refused by the
// participants: too little stock for the second line (the first line's
// reservation is released, no payment is asked for) and a declined
// payment (both lines released, the decline recorded). Each answers the
// monolith's problem and leaks no stock.
func TestPlacementCompensates(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		svc, url := w.startOrders(siblingDSN(t, dsn))
		a, b := w.products[0], w.products[1]
		cases := []struct {
			name       string
			qa, qb     int
			limit      int64
			status     int
			slug       string
			authorized bool
		}{
			{name: "out of stock", qa: 3, qb: stockOf[1] + 1, limit: -1, status: http.StatusConflict, slug: "out-of-stock"},
			{name: "declined", qa: 3, qb: 1, limit: 100, status: http.StatusUnprocessableEntity, slug: "payment-declined", authorized: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := w.with(t)
				ctx := context.Background()
				if tc.limit >= 0 {
					if _, err := w.shop.Payments().SetLimit(ctx, w.customer.ID, payments.LimitPatch{CreditLimitCents: &tc.limit}); err != nil {
						t.Fatal(err)
					}
				}
				ans := w.call(http.MethodPost, url+"/api/orders", map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{
					{"sku": a.SKU, "quantity": tc.qa}, {"sku": b.SKU, "quantity": tc.qb}}}).expect(tc.status)
				if p := ans.problem(); p.Type != "https://github.com/stranglerkit/strangler/blob/main/docs/problems.md#"+tc.slug {
					t.Errorf("problem %+v, want %s", p, tc.slug)
				}
				w.noLeak(nil)
				sagas, err := svc.Orchestrator().List(ctx, saga.Filter{State: saga.Compensated})
				if err != nil || len(sagas) == 0 {
					t.Fatalf("compensated sagas %v, %v: want the placement's", sagas, err)
				}
				var id int64
				if _, err := fmt.Sscanf(sagas[0].ID, "order-%d", &id); err != nil {
					t.Fatal(err)
				}
				auth, ok := w.authorization(placeKey(id, service.StepAuthorize))
				switch {
				case tc.authorized && (!ok || auth.Status != payments.StatusDeclined):
					t.Errorf("authorization %+v (found %v): want the decline recorded", auth, ok)
				case !tc.authorized && ok && auth.Status != payments.StatusVoided:
					t.Errorf("authorization %+v: want none, or a null void", auth)
				}
				w.call(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", url, id), nil).expect(http.StatusNotFound)
			})
		}
	})
}

// TestPlacementStillRunning holds the inventory service's answer past the
// placement's wait: POST answers 202 with the order's Location and the
// saga, the order is not there while the saga runs, and appears, placed,
// once the inventory answers.
func TestPlacementStillRunning(t *testing.T) {
	w := newWorld(t, dbtest.SQLiteDSN(t))
	gate := make(chan struct{})
	target := w.invURL
	held := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/reservations") {
			<-gate
		}
		proxyTo(t, target, rw, r)
	}))
	t.Cleanup(held.Close)
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	w.invURL = held.URL
	svc, url := w.startOrdersWith(dbtest.SQLiteDSN(t), func(c *orders.Config) { c.PlaceTimeout = 50 * time.Millisecond })
	ans := w.call(http.MethodPost, url+"/api/orders", map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 1}}}).expect(http.StatusAccepted)
	var p struct {
		ID    int64  `json:"id"`
		Saga  string `json:"saga"`
		State string `json:"state"`
	}
	ans.decode(&p)
	if loc := ans.header.Get("Location"); loc != fmt.Sprintf("/api/orders/%d", p.ID) || p.Saga != service.SagaID(p.ID) || p.State != string(saga.Running) {
		t.Fatalf("202 %+v, Location %q: want the order's id, saga and running", p, loc)
	}
	w.call(http.MethodGet, url+ans.header.Get("Location"), nil).expect(http.StatusNotFound)
	close(gate)
	eventually(t, "the saga completes", func() bool {
		s, err := svc.Orchestrator().Get(context.Background(), p.Saga)
		return err == nil && s.State == saga.Completed
	})
	var o aclorders.LegacyOrder
	w.call(http.MethodGet, url+ans.header.Get("Location"), nil).expect(http.StatusOK).decode(&o)
	if o.ID != p.ID || o.Status != aclorders.LegacyPlaced {
		t.Errorf("order %+v: want %d placed", o, p.ID)
	}
}

// proxyTo forwards r to the server at target.
func proxyTo(t *testing.T, target string, rw http.ResponseWriter, r *http.Request) {
	u, err := url.Parse(target)
	if err != nil {
		t.Error(err)
		return
	}
	httputil.NewSingleHostReverseProxy(u).ServeHTTP(rw, r)
}

// TestReadModelsFromTheBroker feeds the orders service's local read models
// the way production does: the monolith's outbox, its relay, the broker
// over TCP and the service's consumer. An order placed with the customer
// and prices learnt that way carries the product's name, and a change of
// the customer's e-mail in the monolith reaches the order.
func TestReadModelsFromTheBroker(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log := changefeedtest.Logger()
		broker := changefeedtest.NewBroker(t)
		kafka := changefeed.KafkaConfig{TopicPrefix: "ord", Partitions: 2}
		kafka.SetDefaults("")
		w := newWorld(t, dsn)
		rl, err := relay.New(relay.Config{Name: "monolith"}, relay.Options{DB: w.shop.DB(), Brokers: broker.Brokers(), Kafka: kafka, Logger: log})
		changefeedtest.Must(t, err)
		relayDone := make(chan error, 1)
		go func() { relayDone <- rl.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-relayDone })
		svc, err := orders.New(w.ordersConfig(siblingDSN(t, dsn)), orders.Options{Brokers: broker.Brokers(), Kafka: kafka, Logger: log})
		changefeedtest.Must(t, err)
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		<-svc.Ready()
		// The service takes the order writes, as after the flip.
		changefeedtest.Must(t, svc.SetOwner(ctx, true))
		url := "http://" + svc.Addr()
		body := map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 1}}}
		var o aclorders.LegacyOrder
		eventually(t, "the service learns the customer and the prices", func() bool {
			ans := w.call(http.MethodPost, url+"/api/orders", body)
			if ans.status == http.StatusCreated {
				ans.decode(&o)
			}
			return ans.status == http.StatusCreated
		})
		if o.Lines[0].ProductName != w.products[0].Name || o.Lines[0].UnitPriceCents != w.products[0].PriceCents || o.CustomerEmail != w.customer.Email {
			t.Errorf("order %+v: want the product's name and price and the customer's e-mail from the events", o)
		}
		w.shop.Patch(fmt.Sprintf("/api/customers/%d", w.customer.ID), map[string]any{"email": "ann.new@example.nl"}).Expect(http.StatusOK)
		eventually(t, "the new e-mail reaches the order", func() bool {
			var got aclorders.LegacyOrder
			w.call(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", url, o.ID), nil).expect(http.StatusOK).decode(&got)
			return got.CustomerEmail == "ann.new@example.nl"
		})
	})
}

// TestConcurrentPlacements places more orders at once than there is stock
// for: exactly as many as the stock covers are placed, the others answer
// out-of-stock, and the stock reserved is what the placed orders hold.
func TestConcurrentPlacements(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		_, url := w.startOrders(siblingDSN(t, dsn))
		sku := w.products[1].SKU
		const n = 12
		type result struct {
			status int
			order  aclorders.LegacyOrder
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			go func() {
				body := fmt.Sprintf(`{"customer_id": %d, "lines": [{"sku": %q, "quantity": 1}]}`, w.customer.ID, sku)
				resp, err := http.Post(url+"/api/orders", "application/json", strings.NewReader(body))
				if err != nil {
					results <- result{}
					return
				}
				defer resp.Body.Close()
				r := result{status: resp.StatusCode}
				if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&r.order) != nil {
					r.status = 0
				}
				results <- r
			}()
		}
		var placed []aclorders.LegacyOrder
		refused := 0
		for i := 0; i < n; i++ {
			r := <-results
			switch r.status {
			case http.StatusCreated:
				placed = append(placed, r.order)
			case http.StatusConflict:
				refused++
			default:
				t.Errorf("a placement answered %d", r.status)
			}
		}
		if len(placed) != stockOf[1] || refused != n-stockOf[1] {
			t.Errorf("%d placed and %d refused, want %d and %d", len(placed), refused, stockOf[1], n-stockOf[1])
		}
		w.noLeak(placed)
	})
}

// TestGetReadsItsWrites: a GET of an order answers what its events say
// even while the read model holds an older version of it, as the
// monolith's GET after a write does. The service is served without Run,
// so that its projections move only when the test catches them up.
func TestGetReadsItsWrites(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		w := newWorld(t, dsn)
		svc, err := orders.New(w.ordersConfig(siblingDSN(t, dsn)), orders.Options{Logger: httpx.Discard})
		changefeedtest.Must(t, err)
		t.Cleanup(func() { _ = svc.Close() })
		w.feed(svc)
		srv := httptest.NewServer(svc.Handler())
		t.Cleanup(srv.Close)
		orderStore := newStore(t, svc.DB(), store.Options{})
		projections, err := orders.NewProjections(svc.DB(), eventsource.RunnerConfig{}, eventsource.RunnerOptions{})
		changefeedtest.Must(t, err)
		t.Cleanup(func() { _ = projections.Close() })
		p := placed(aclorders.ServiceIDBase+7, w.customer.ID, 2)
		_, err = orderStore.Place(ctx, p)
		changefeedtest.Must(t, err)
		get := func(step string, status aclorders.LegacyStatus, version int) {
			t.Helper()
			var o aclorders.LegacyOrder
			w.call(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", srv.URL, p.ID), nil).expect(http.StatusOK).decode(&o)
			if o.Status != status || o.Version != version {
				t.Fatalf("%s: GET answers status %d v%d, want %d v%d", step, o.Status, o.Version, status, version)
			}
		}
		get("placed, not projected", aclorders.LegacyPlaced, 1)
		changefeedtest.Must(t, projections.CatchUp(ctx))
		get("placed, projected", aclorders.LegacyPlaced, 1)
		_, err = orderStore.Execute(ctx, p.ID, func(o domain.Order) ([]eventsource.Event, error) { return o.Cancel("changed my mind", t0) })
		changefeedtest.Must(t, err)
		get("cancelled, the view at the placement", aclorders.LegacyCancelled, 2)
		changefeedtest.Must(t, projections.CatchUp(ctx))
		get("cancelled, projected", aclorders.LegacyCancelled, 2)
	})
}
