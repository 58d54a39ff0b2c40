package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/payments"
	"github.com/stranglerkit/strangler/monolith/shoptest"
	"github.com/stranglerkit/strangler/saga"
)

// siblingDSN returns a fresh database of the same engine as dsn.
func siblingDSN(t testing.TB, dsn string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "sqlite:") {
		return dbtest.SQLiteDSN(t)
	}
	return dbtest.PostgresDSN(t)
}

// world is the real parts of a placement: the monolith (its payments
// module), the inventory service, each on a loopback HTTP server with a
// database of its own, and the products and customer the orders use.
type world struct {
	t        testing.TB
	shop     *shoptest.Shop
	shopDSN  string
	inv      *inventory.Service
	invURL   string
	invDSN   string
	products []catalog.Product
	customer customers.Customer
	events   []changefeed.Event
}

// stockOf is how many units of each product the inventory service holds
// in AMS1 at the start.
var stockOf = []int{10, 5}

func newWorld(t testing.TB, dsn string) *world {
	t.Helper()
	w := &world{t: t, shop: shoptest.New(t, dsn), shopDSN: dsn, invDSN: siblingDSN(t, dsn)}
	w.products = []catalog.Product{w.shop.CreateProduct("ORD-A", 1290), w.shop.CreateProduct("ORD-B", 2150)}
	w.customer = w.shop.CreateCustomer("ann@example.nl")
	inv, err := inventory.New(w.inventoryConfig(), inventory.Options{Logger: httpx.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	ctx := context.Background()
	if err := inv.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inv.SetOwner(ctx, true); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(inv.Handler())
	t.Cleanup(srv.Close)
	w.inv, w.invURL = inv, srv.URL
	for i, p := range w.products {
		ev := w.event(aclinv.ProductAggregate, p.Ref, aclinv.ProductCreated, p)
		ev.Origin = aclinv.LegacyOrigin
		err := db.Transact(ctx, inv.DB(), func(ctx context.Context) error {
			return inv.Forward().HandleProduct(ctx, db.Conn(ctx, inv.DB()), ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		w.call(http.MethodPost, w.invURL+"/v1/items/"+p.SKU+"/adjustments", map[string]any{"warehouse": "nl-ams", "delta": stockOf[i], "reason": "delivery"}).expect(http.StatusOK)
	}
	w.events = append(w.events, w.event(aclorders.CustomerAggregate, fmt.Sprint(w.customer.ID), aclorders.CustomerCreated, w.customer))
	for _, p := range w.products {
		w.events = append(w.events, w.event(aclorders.ProductAggregate, p.Ref, aclorders.ProductCreated, p))
	}
	return w
}

// inventoryConfig is the config of the world's inventory service, on a
// free port and without registration.
func (w *world) inventoryConfig() inventory.Config {
	off := false
	cfg := inventory.Config{Addr: "127.0.0.1:0", DSN: w.invDSN}
	cfg.RegisterWith.Enabled = &off
	cfg.SetDefaults(w.t.TempDir())
	return cfg
}

// addPoorCustomer adds a customer whose credit limit of one euro declines
// every order, so that each of their placements compensates.
func (w *world) addPoorCustomer() customers.Customer {
	w.t.Helper()
	poor := w.shop.CreateCustomer("poor@example.nl")
	limit := int64(100)
	if _, err := w.shop.Payments().SetLimit(context.Background(), poor.ID, payments.LimitPatch{CreditLimitCents: &limit}); err != nil {
		w.t.Fatal(err)
	}
	w.events = append(w.events, w.event(aclorders.CustomerAggregate, fmt.Sprint(poor.ID), aclorders.CustomerCreated, poor))
	return poor
}

// with returns the world bound to t, for use inside a subtest.
func (w *world) with(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

func (w *world) event(aggregate, id, typ string, payload any) changefeed.Event {
	w.t.Helper()
	ev, err := changefeed.NewEvent(aggregate, id, typ, payload)
	if err != nil {
		w.t.Fatal(err)
	}
	return ev
}

// ordersConfig is the orders service's config against the world, on dsn.
func (w *world) ordersConfig(dsn string) orders.Config {
	off := false
	cfg := orders.Config{Addr: "127.0.0.1:0", DSN: dsn, InventoryURL: w.invURL, PaymentsURL: w.shop.URL, PlaceTimeout: time.Minute}
	cfg.RegisterWith.Enabled = &off
	cfg.RegisterWith.Token = "orders-test-token"
	cfg.SetDefaults(w.t.TempDir())
	return cfg
}

// feed migrates the orders database at dsn, makes the service the owner
// of the orders, as after the flip (persisted, so that a service started
// on the same database later owns them too), and applies the monolith's
// customer and product events to its read models, as the consumer would.
func (w *world) feed(svc *orders.Service) {
	w.t.Helper()
	ctx := context.Background()
	if err := svc.Prepare(ctx); err != nil {
		w.t.Fatal(err)
	}
	if err := svc.SetOwner(ctx, true); err != nil {
		w.t.Fatal(err)
	}
	core := svc.Core()
	for _, ev := range w.events {
		err := db.Transact(ctx, svc.DB(), func(ctx context.Context) error {
			tx := db.Conn(ctx, svc.DB())
			if ev.AggregateType == aclorders.CustomerAggregate {
				return core.ReadModels().HandleCustomer(ctx, tx, ev)
			}
			return core.HandleProduct(ctx, tx, ev)
		})
		if err != nil {
			w.t.Fatal(err)
		}
	}
}

// startOrders runs an orders service on dsn until the test ends and
// returns it with its base URL.
func (w *world) startOrders(dsn string) (*orders.Service, string) {
	w.t.Helper()
	return w.startOrdersWith(dsn, func(*orders.Config) {})
}

// startOrdersWith is startOrders with the config changed by change.
func (w *world) startOrdersWith(dsn string, change func(*orders.Config)) (*orders.Service, string) {
	w.t.Helper()
	return w.startOrdersOpt(dsn, change, orders.Options{Logger: httpx.Discard})
}

// startOrdersOpt is startOrdersWith with the options opt, such as the
// brokers.
func (w *world) startOrdersOpt(dsn string, change func(*orders.Config), opt orders.Options) (*orders.Service, string) {
	w.t.Helper()
	cfg := w.ordersConfig(dsn)
	change(&cfg)
	svc, err := orders.New(cfg, opt)
	if err != nil {
		w.t.Fatal(err)
	}
	w.feed(svc)
	runService(w.t, "orders service", svc.Run, svc.Started())
	return svc, "http://" + svc.Addr()
}

// holdAt serves a front of the HTTP server at target that holds each
// request whose path ends in suffix until release is called (or the test
// ends); reached gets a value when such a request arrives.
func holdAt(t *testing.T, target, suffix string) (front string, reached <-chan struct{}, release func()) {
	t.Helper()
	arrived, hold := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, suffix) {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-hold
		}
		proxyTo(t, target, rw, r)
	}))
	t.Cleanup(srv.Close)
	// The cleanups run last first: the held requests go on before Close
	// waits for them.
	t.Cleanup(release)
	return srv.URL, arrived, release
}

// runService runs a service's run until the test ends or the stop it
// returns is called, once the service listens (started is closed); what
// names the service in failures.
func runService(t testing.TB, what string, run func(context.Context) error, started <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-started:
	case err := <-done:
		once.Do(cancel)
		t.Fatalf("%s: %v", what, err)
	}
	return stop
}

// answer is an HTTP answer read whole.
type answer struct {
	t      testing.TB
	req    string
	status int
	header http.Header
	body   []byte
}

// call sends a request with body as JSON, or as it is when it is a
// []byte, and reads the answer.
func (w *world) call(method, url string, body any) *answer {
	w.t.Helper()
	var r io.Reader
	if raw, ok := body.([]byte); ok {
		r = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			w.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return &answer{t: w.t, req: method + " " + url, status: resp.StatusCode, header: resp.Header, body: b}
}

func (a *answer) expect(status int) *answer {
	a.t.Helper()
	if a.status != status {
		a.t.Fatalf("%s: status %d, want %d: %s", a.req, a.status, status, a.body)
	}
	return a
}

func (a *answer) decode(v any) {
	a.t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		a.t.Fatalf("%s: %v: %s", a.req, err, a.body)
	}
}

func (a *answer) problem() httpx.Problem {
	a.t.Helper()
	var p httpx.Problem
	a.decode(&p)
	return p
}

// stock is a SKU's units at the inventory service.
type stock struct {
	OnHand   int `json:"on_hand"`
	Reserved int `json:"reserved"`
}

func (w *world) stock(sku string) stock {
	w.t.Helper()
	var s stock
	w.call(http.MethodGet, w.invURL+"/v1/items/"+sku, nil).expect(http.StatusOK).decode(&s)
	return s
}

// authorization returns the payments module's authorization under key;
// ok is false when there is none.
func (w *world) authorization(key string) (payments.Authorization, bool) {
	w.t.Helper()
	a, err := w.shop.Payments().Get(context.Background(), payments.Ref{IdempotencyKey: key})
	if err != nil {
		return a, false
	}
	return a, true
}

// noLeak checks that what the inventory service holds reserved is what the
// open orders in ods hold, SKU by SKU.
func (w *world) noLeak(ods []aclorders.LegacyOrder) {
	w.t.Helper()
	for _, leak := range w.leaks(ods).problems {
		w.t.Error(leak)
	}
}

// reservations compares what the inventory service holds reserved with
// what the open orders hold: the units of each, over every product, and
// what differs, SKU by SKU.
type reservations struct {
	reserved, open int
	problems       []string
}

// leaks compares the inventory service's reserved stock with the lines of
// the open orders in ods.
func (w *world) leaks(ods []aclorders.LegacyOrder) reservations {
	w.t.Helper()
	want := map[string]int{}
	for _, o := range ods {
		if o.Status == aclorders.LegacyPlaced || o.Status == aclorders.LegacyPaid {
			for _, l := range o.Lines {
				want[l.SKU] += l.Quantity
			}
		}
	}
	var r reservations
	for _, p := range w.products {
		got := w.stock(p.SKU).Reserved
		r.reserved += got
		r.open += want[p.SKU]
		if got != want[p.SKU] {
			r.problems = append(r.problems, fmt.Sprintf("%s: %d reserved, but the open orders hold %d", p.SKU, got, want[p.SKU]))
		}
	}
	return r
}

// placeKey is the idempotency key of order id's payment authorization.
func placeKey(id int64, step string) string { return saga.Key(fmt.Sprintf("order-%d", id), step) }

// eventually polls cond until it holds or a minute has passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
