package orders_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/saga"
)

// effects is what an order write can change anywhere: the service's
// events, sagas and order id counter, the inventory service's stock, the
// payments module's holds and charges, and the status of the orders the
// test moves in their events (the read models trail them).
type effects struct {
	Events, Sagas, LastID int64
	Stock                 []stock
	Authorized, Captured  int64
	Statuses              []string
}

// effects reads what order writes change, with the statuses of the orders
// ids.
func (w *world) effects(svc *orders.Service, ids ...int64) effects {
	w.t.Helper()
	ctx := context.Background()
	var e effects
	for _, q := range []struct {
		sql string
		to  *int64
	}{
		{"SELECT COUNT(*) FROM es_events", &e.Events},
		{"SELECT COUNT(*) FROM saga_instances", &e.Sagas},
		{"SELECT last FROM acl_order_ids WHERE name = 'orders'", &e.LastID},
	} {
		if err := svc.DB().WithContext(ctx).Raw(q.sql).Scan(q.to).Error; err != nil {
			w.t.Fatalf("%s: %v", q.sql, err)
		}
	}
	for _, p := range w.products {
		e.Stock = append(e.Stock, w.stock(p.SKU))
	}
	acc, err := w.shop.Payments().Account(ctx, w.customer.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	e.Authorized, e.Captured = acc.AuthorizedCents, acc.CapturedCents
	for _, id := range ids {
		o, err := svc.Core().Store().Get(ctx, id)
		if err != nil {
			w.t.Fatal(err)
		}
		e.Statuses = append(e.Statuses, fmt.Sprint(o.Status))
	}
	return e
}

// TestOwnershipSwitch sends each order write (place, pay, ship, cancel) to
// the service as a read replica and as the owner: the read replica answers
// 409 not-owner and changes nothing (no event, no saga, no order id, no
// stock reserved or shipped, no payment authorized, captured or voided)
// while it still serves the orders' reads; the owner takes the same writes.
func TestOwnershipSwitch(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		svc, url := w.startOrders(siblingDSN(t, dsn))
		body := map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 1}}}
		place := func() aclorders.LegacyOrder {
			var o aclorders.LegacyOrder
			w.call(http.MethodPost, url+"/api/orders", body).expect(http.StatusCreated).decode(&o)
			return o
		}
		// The orders the writes move, placed while the service owns them:
		// one to pay, a paid one to ship, one to cancel.
		toPay, toShip, toCancel := place(), place(), place()
		w.call(http.MethodPost, fmt.Sprintf("%s/api/orders/%d/pay", url, toShip.ID), nil).expect(http.StatusOK)
		ids := []int64{toPay.ID, toShip.ID, toCancel.ID}
		writes := []struct {
			name, path string
			body       any
			status     int
		}{
			{"place", "/api/orders", body, http.StatusCreated},
			{"pay", fmt.Sprintf("/api/orders/%d/pay", toPay.ID), nil, http.StatusOK},
			{"ship", fmt.Sprintf("/api/orders/%d/ship", toShip.ID), nil, http.StatusOK},
			{"cancel", fmt.Sprintf("/api/orders/%d/cancel", toCancel.ID), nil, http.StatusOK},
		}
		for _, owner := range []bool{false, true} {
			if err := svc.SetOwner(context.Background(), owner); err != nil {
				t.Fatal(err)
			}
			for _, tt := range writes {
				t.Run(fmt.Sprintf("%s/owner=%t", tt.name, owner), func(t *testing.T) {
					w := w.with(t)
					before := w.effects(svc, ids...)
					ans := w.call(http.MethodPost, url+tt.path, tt.body)
					if owner {
						ans.expect(tt.status)
						if after := w.effects(svc, ids...); fmt.Sprint(after) == fmt.Sprint(before) {
							t.Errorf("the owner's %s changed nothing: %+v", tt.name, after)
						}
						return
					}
					ans.expect(http.StatusConflict)
					if p := ans.problem(); p.Type != httpx.ProblemTypeBase+"not-owner" || p.Status != http.StatusConflict {
						t.Errorf("refused %s: problem %+v, want type %snot-owner", tt.name, p, httpx.ProblemTypeBase)
					}
					if ct := ans.header.Get("Content-Type"); ct != "application/problem+json" {
						t.Errorf("refused %s: Content-Type %q, want application/problem+json", tt.name, ct)
					}
					if after := w.effects(svc, ids...); fmt.Sprint(after) != fmt.Sprint(before) {
						t.Errorf("the refused %s changed something:\nbefore %+v\nafter  %+v", tt.name, before, after)
					}
					// The read replica serves the reads.
					for _, id := range ids {
						w.call(http.MethodGet, fmt.Sprintf("%s/api/orders/%d", url, id), nil).expect(http.StatusOK)
					}
					w.call(http.MethodGet, url+"/api/orders", nil).expect(http.StatusOK)
				})
			}
		}
	})
}

// TestOwnershipAPI drives GET and PUT /v1/ownership as the inventory
// service's: PUT needs the admin token and a body with owner, and the
// choice is persisted, so that a service started again on the same
// database is on the same side of the flip.
func TestOwnershipAPI(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		odsn := siblingDSN(t, dsn)
		_, url := w.startOrders(odsn)
		token := w.ordersConfig(odsn).RegisterWith.Token
		// restarted is a second service on the same database, as after a
		// restart: it reads the persisted ownership.
		restarted := func() bool {
			t.Helper()
			svc, err := orders.New(w.ordersConfig(odsn), orders.Options{Logger: httpx.Discard})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = svc.Close() }()
			if err := svc.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			return svc.Owner()
		}
		for _, tt := range []struct {
			name, method, body, token string
			status                    int
			owner                     bool // what GET /v1/ownership and a restarted service say after the call
		}{
			{"read", http.MethodGet, "", "", http.StatusOK, true},
			{"no token", http.MethodPut, `{"owner":false}`, "", http.StatusUnauthorized, true},
			{"wrong token", http.MethodPut, `{"owner":false}`, "not-the-admin-token", http.StatusUnauthorized, true},
			{"no owner", http.MethodPut, `{}`, token, http.StatusUnprocessableEntity, true},
			{"not json", http.MethodPut, `owner`, token, http.StatusBadRequest, true},
			{"give up", http.MethodPut, `{"owner":false}`, token, http.StatusOK, false},
			{"take", http.MethodPut, `{"owner":true}`, token, http.StatusOK, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequest(tt.method, url+"/v1/ownership", bytes.NewBufferString(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tt.token != "" {
					req.Header.Set("Authorization", "Bearer "+tt.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Fatalf("%s /v1/ownership %s: %d, want %d", tt.method, tt.body, resp.StatusCode, tt.status)
				}
				var got struct{ Owner bool }
				w := w.with(t)
				w.call(http.MethodGet, url+"/v1/ownership", nil).expect(http.StatusOK).decode(&got)
				if got.Owner != tt.owner {
					t.Errorf("GET /v1/ownership: owner %t, want %t", got.Owner, tt.owner)
				}
				if r := restarted(); r != tt.owner {
					t.Errorf("a restarted service: owner %t, want %t", r, tt.owner)
				}
			})
		}
	})
}

// TestOwnershipKeepsRunningSagas takes ownership away while a placement's
// saga waits at the inventory service, as a rollback below the flip can:
// the placement started while the service was the owner completes, and
// only the next placement is refused.
func TestOwnershipKeepsRunningSagas(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		var (
			reached <-chan struct{}
			release func()
		)
		w.invURL, reached, release = holdAt(t, w.invURL, "/reservations")
		svc, url := w.startOrders(siblingDSN(t, dsn))
		body := map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 1}}}
		placed := make(chan *answer, 1)
		go func() { placed <- w.call(http.MethodPost, url+"/api/orders", body) }()
		select {
		case <-reached:
		case a := <-placed:
			t.Fatalf("the placement answered %d before it reserved: %s", a.status, a.body)
		}
		if err := svc.SetOwner(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		w.call(http.MethodPost, url+"/api/orders", body).expect(http.StatusConflict)
		release()
		var o aclorders.LegacyOrder
		(<-placed).expect(http.StatusCreated).decode(&o)
		sg, err := svc.Orchestrator().Get(context.Background(), service.SagaID(o.ID))
		if err != nil {
			t.Fatal(err)
		}
		if sg.State != saga.Completed {
			t.Errorf("the running placement's saga is %s, want completed", sg.State)
		}
		w.noLeak([]aclorders.LegacyOrder{o})
	})
}
