package orders_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit/servicekittest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/saga"
)

// expectStarting checks that a is the retryable answer of a service that
// has not loaded its ownership: 503 not-ready with Retry-After.
func (a *answer) expectStarting() {
	a.t.Helper()
	a.expect(http.StatusServiceUnavailable)
	if p := a.problem(); p.Type != httpx.ProblemTypeBase+"not-ready" {
		a.t.Errorf("%s: problem %+v, want not-ready", a.req, p)
	}
	if ct, ra := a.header.Get("Content-Type"), a.header.Get("Retry-After"); ct != httpx.ContentTypeProblem || ra == "" {
		a.t.Errorf("%s: Content-Type %q, Retry-After %q: want a problem with Retry-After", a.req, ct, ra)
	}
}

// TestOwnershipBeforeLoad restarts an orders service that owns the orders
// and holds its start-up, listening, between the migrations and the load
// of its persisted ownership (BeforeLoad): a placement, a payment, the
// reads and the ownership API get a retryable 503 not-ready with
// Retry-After, never the 409 not-owner of a read replica, and /readyz is
// 503; once the ownership is loaded the same requests go through.
func TestOwnershipBeforeLoad(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		odsn := siblingDSN(t, dsn)
		first, err := orders.New(w.ordersConfig(odsn), orders.Options{Logger: httpx.Discard})
		if err != nil {
			t.Fatal(err)
		}
		w.feed(first)
		stop := runService(t, "orders service", first.Run, first.Started())
		body := map[string]any{"customer_id": w.customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 1}}}
		var o aclorders.LegacyOrder
		w.call(http.MethodPost, "http://"+first.Addr()+"/api/orders", body).expect(http.StatusCreated).decode(&o)
		stop()

		hold := servicekittest.NewHold()
		svc, err := orders.New(w.ordersConfig(odsn), orders.Options{Logger: httpx.Discard, BeforeLoad: hold.BeforeLoad})
		if err != nil {
			t.Fatal(err)
		}
		runService(t, "restarted orders service", svc.Run, svc.Started())
		<-hold.Holding()
		base := "http://" + svc.Addr()
		requests := []struct {
			name, method, path string
			body               any
			started            int
		}{
			{"place", http.MethodPost, "/api/orders", body, http.StatusCreated},
			{"pay", http.MethodPost, fmt.Sprintf("/api/orders/%d/pay", o.ID), nil, http.StatusOK},
			{"read", http.MethodGet, fmt.Sprintf("/api/orders/%d", o.ID), nil, http.StatusOK},
			{"list", http.MethodGet, "/api/orders", nil, http.StatusOK},
			{"ownership", http.MethodGet, "/v1/ownership", nil, http.StatusOK},
		}
		for _, r := range requests {
			w.call(r.method, base+r.path, r.body).expectStarting()
		}
		w.call(http.MethodGet, base+"/readyz", nil).expect(http.StatusServiceUnavailable)
		w.call(http.MethodGet, base+"/healthz", nil).expect(http.StatusOK)
		hold.Open()
		<-svc.Ready()
		for _, r := range requests {
			w.call(r.method, base+r.path, r.body).expect(r.started)
		}
	})
}

// front is the inventory service's address, which stays while the
// service behind it restarts: it forwards to the instance at target and
// reports the path of the first request the instance answers 503 on
// unavailable.
type front struct {
	*httptest.Server
	target      atomic.Pointer[url.URL]
	unavailable chan string
}

func newFront(t testing.TB, target string) *front {
	f := &front{unavailable: make(chan string, 1)}
	f.to(t, target)
	f.Server = httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(f.target.Load()) },
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusServiceUnavailable {
				select {
				case f.unavailable <- resp.Request.URL.Path:
				default:
				}
			}
			return nil
		},
	})
	t.Cleanup(f.Close)
	return f
}

// to sends what comes in from then on to the instance at target.
func (f *front) to(t testing.TB, target string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f.target.Store(u)
}

// restartInventory closes the world's inventory service and starts another
// on its database behind fr, as after a crash: the new one listens, and
// holds its start-up before it loads its ownership until open is called.
func (w *world) restartInventory(fr *front) (open func()) {
	w.t.Helper()
	if err := w.inv.Close(); err != nil {
		w.t.Fatal(err)
	}
	hold := servicekittest.NewHold()
	inv, err := inventory.New(w.inventoryConfig(), inventory.Options{Logger: httpx.Discard, BeforeLoad: hold.BeforeLoad})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = inv.Close() })
	runService(w.t, "restarted inventory service", inv.Run, inv.Started())
	<-hold.Holding()
	fr.to(w.t, "http://"+inv.Addr())
	w.inv = inv
	return hold.Open
}

// TestParticipantStartingRetried restarts the inventory service while a
// placement needs it, as a kill -9 of `strangler up` does, so that the
// placement's reservation (placed while the service starts) or its release
// (declined by payments while the service restarts) reaches the service
// after it listens and before it loads its ownership. The step retries the
// 503 not-ready it gets under its retry policy: the placement completes,
// or is compensated, and its saga never parks in manual.
func TestParticipantStartingRetried(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		for _, tc := range []struct {
			name, path string
			declined   bool
			failed     saga.Event
			status     int
			state      saga.State
		}{
			{"reserve", "/reservations", false, saga.StepFailed, http.StatusCreated, saga.Completed},
			{"release", "/releases", true, saga.StepCompensationFailed, http.StatusUnprocessableEntity, saga.Compensated},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t, siblingDSN(t, dsn))
				customer := w.customer
				if tc.declined {
					customer = w.addPoorCustomer()
				}
				fr := newFront(t, w.invURL)
				w.invURL = fr.URL
				// The payments module's authorization waits until the
				// inventory service has restarted, so that a declined
				// placement's release goes to the restarted service.
				payments, authorizing, pay := holdAt(t, w.shop.URL, "/authorizations")
				svc, base := w.startOrdersWith(siblingDSN(t, dsn), func(c *orders.Config) { c.PaymentsURL = payments })
				body := map[string]any{"customer_id": customer.ID, "lines": []map[string]any{{"sku": w.products[0].SKU, "quantity": 2}}}

				var open func()
				if !tc.declined {
					open = w.restartInventory(fr)
					pay()
				}
				placed := make(chan *answer, 1)
				go func() { placed <- w.call(http.MethodPost, base+"/api/orders", body) }()
				if tc.declined {
					select {
					case <-authorizing:
					case a := <-placed:
						t.Fatalf("the placement answered %d before it authorized: %s", a.status, a.body)
					}
					open = w.restartInventory(fr)
					pay()
				}
				select {
				case path := <-fr.unavailable:
					if !strings.HasSuffix(path, tc.path) {
						t.Errorf("the starting inventory service answered 503 to %s, want a %s", path, tc.path)
					}
				case a := <-placed:
					t.Fatalf("the placement answered %d before the starting inventory service answered 503: %s", a.status, a.body)
				}
				open()
				ans := (<-placed).expect(tc.status)

				ctx := context.Background()
				sagas, err := svc.Orchestrator().List(ctx, saga.Filter{})
				if err != nil || len(sagas) != 1 {
					t.Fatalf("sagas %v, %v: want the placement's", sagas, err)
				}
				sg, err := svc.Orchestrator().Get(ctx, sagas[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				if sg.State != tc.state {
					t.Errorf("the placement's saga is %s (%s), want %s", sg.State, sg.Error, tc.state)
				}
				retried := false
				for _, e := range sg.Log {
					if e.Step == service.StepReserve && e.Event == tc.failed && strings.Contains(e.Error, "503") {
						retried = true
					}
				}
				if !retried {
					t.Errorf("the saga's log has no %s of %s with the 503: %+v", tc.failed, service.StepReserve, sg.Log)
				}
				var ods []aclorders.LegacyOrder
				if !tc.declined {
					var o aclorders.LegacyOrder
					ans.decode(&o)
					ods = append(ods, o)
				}
				w.noLeak(ods)
			})
		}
	})
}
