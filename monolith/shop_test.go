package monolith_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/payments"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// poll calls fn until it returns true or a generous deadline passes.
func poll(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadiness(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.Unprepared())
		shop.Get("/healthz").Expect(http.StatusOK)
		p := shop.Get("/readyz").Expect(http.StatusServiceUnavailable).Problem()
		if !strings.HasSuffix(p.Type, "#not-ready") {
			t.Fatalf("readyz before Prepare: %+v", p)
		}
		if err := shop.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status string
			Checks map[string]string
		}
		shop.Get("/readyz").Expect(http.StatusOK).Decode(&body)
		if body.Status != "ready" || body.Checks["database"] != "ok" {
			t.Fatalf("readyz after Prepare: %+v", body)
		}
	})
}

// syncBuffer is a log sink that the server's goroutines and the test can
// share.
type syncBuffer struct{ lifecycletest.Buffer }

func (b *syncBuffer) lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestObservability(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithLogger(log), shoptest.WithSeed())

	r := shop.Do("GET", "/api/catalog/products/1", nil, "X-Request-ID", "req-observe-1").Expect(http.StatusOK)
	if got := r.Header.Get("X-Request-ID"); got != "req-observe-1" {
		t.Fatalf("X-Request-ID echoed as %q", got)
	}
	r = shop.Do("GET", "/api/orders/999", nil, "X-Request-ID", "bad id with spaces").Expect(http.StatusNotFound)
	id := r.Header.Get("X-Request-ID")
	if id == "" || id == "bad id with spaces" {
		t.Fatalf("an unsafe request ID was reused: %q", id)
	}
	if p := r.Problem(); p.RequestID != id {
		t.Fatalf("problem request_id %q, header %q", p.RequestID, id)
	}

	t.Run("access log", func(t *testing.T) {
		var line map[string]any
		poll(t, "the access log line", func() bool {
			for _, l := range logs.lines() {
				if l["request_id"] == "req-observe-1" && l["msg"] == "request" {
					line = l
					return true
				}
			}
			return false
		})
		want := map[string]any{"module": "catalog", "route": "/api/catalog/products/:id", "status": float64(200), "method": "GET"}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
			}
		}
		if _, ok := line["duration_ms"].(float64); !ok {
			t.Errorf("access log has no duration_ms: %v", line)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		body := string(shop.Get("/metrics").Expect(http.StatusOK).Body)
		for _, want := range []string{
			`http_requests_total{method="GET",route="/api/catalog/products/:id",status="200"} 1`,
			`http_requests_total{method="GET",route="/api/orders/:id",status="404"} 1`,
			`http_request_duration_seconds_bucket{method="GET",route="/api/catalog/products/:id",le="`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("unknown route", func(t *testing.T) {
		shop.With(t).Get("/api/nothing/here").Expect(http.StatusNotFound).Problem()
	})

	t.Run("body over the default limit", func(t *testing.T) {
		// A body of unknown length is cut off while it is read.
		big := io.MultiReader(strings.NewReader(`{"customer_id":1,"lines":[{"sku":"`), strings.NewReader(strings.Repeat("A", 2<<20)), strings.NewReader(`"}]}`))
		resp, err := shop.Server.Client().Post(shop.URL+"/api/orders", "application/json", big)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
}

// dump reads every row of the tables, in a stable order, for comparison.
func dump(t *testing.T, dsn string, tables ...string) map[string][]map[string]any {
	t.Helper()
	gdb, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(gdb)
	out := map[string][]map[string]any{}
	for _, table := range tables {
		var rows []map[string]any
		if err := gdb.Raw("SELECT * FROM " + table + " ORDER BY 1, 2").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			for k, v := range r {
				if tm, ok := v.(time.Time); ok {
					r[k] = tm.UTC().Format(time.RFC3339Nano)
				}
			}
		}
		out[table] = rows
	}
	return out
}

var seededTables = []string{"catalog_products", "customers", "inv_stock", "inv_movements"}

func TestSeed(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		var counts struct{ Products, Customers, Levels, Short int64 }
		q := `SELECT (SELECT COUNT(*) FROM catalog_products) AS products, (SELECT COUNT(*) FROM customers) AS customers,
    (SELECT COUNT(*) FROM inv_stock) AS levels,
    (SELECT COUNT(*) FROM catalog_products p WHERE (SELECT COUNT(*) FROM inv_stock s WHERE s.product_ref = 'P-' || LPAD(CAST(p.id AS TEXT), 6, '0')) < 2) AS short`
		if db.DialectOf(shop.DB()) == db.SQLite {
			q = strings.Replace(q, "'P-' || LPAD(CAST(p.id AS TEXT), 6, '0')", "printf('P-%06d', p.id)", 1)
		}
		if err := shop.DB().Raw(q).Scan(&counts).Error; err != nil {
			t.Fatal(err)
		}
		if counts.Products != 50 || counts.Customers != 20 || counts.Levels < 100 || counts.Short != 0 {
			t.Fatalf("seeded %+v, want 50 products and 20 customers, each product stocked in two warehouses or more", counts)
		}
		before := dump(t, dsn, seededTables...)
		// Seeding again, as every start does, changes nothing.
		if err := monolith.Seed(context.Background(), shop.DB()); err != nil {
			t.Fatal(err)
		}
		if after := dump(t, dsn, seededTables...); !reflect.DeepEqual(before, after) {
			t.Fatal("a second Seed changed the data")
		}
		// Seeded orders go through, priced and stocked.
		var o orders.Order
		shop.Post("/api/orders", map[string]any{"customer_id": 3, "lines": []map[string]any{{"sku": "COF-ETH-250", "quantity": 2}}}).
			Expect(http.StatusCreated).Decode(&o)
		if o.TotalCents != 2580 || o.CustomerEmail != "sofia.garcia@example.es" {
			t.Fatalf("order on seeded data: %+v", o)
		}
	})
}

func TestSeedIsDeterministic(t *testing.T) {
	a, b := dbtest.SQLiteDSN(t), dbtest.SQLiteDSN(t)
	shoptest.New(t, a, shoptest.WithSeed())
	shoptest.New(t, b, shoptest.WithSeed())
	if da, dbb := dump(t, a, seededTables...), dump(t, b, seededTables...); !reflect.DeepEqual(da, dbb) {
		t.Fatal("two seeded databases differ")
	}
}

func TestSeedLeavesDataAlone(t *testing.T) {
	tests := []struct {
		name string
		seed bool
		pre  func(s *shoptest.Shop)
	}{
		{name: "seed off", seed: false},
		{name: "a customer exists", seed: true, pre: func(s *shoptest.Shop) { s.CreateCustomer("first@example.com") }},
		{name: "a product exists", seed: true, pre: func(s *shoptest.Shop) { s.CreateProduct("FIRST-1", 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := dbtest.SQLiteDSN(t)
			s := shoptest.New(t, dsn)
			want := 0
			if tt.pre != nil {
				tt.pre(s)
				want = 1
			}
			if tt.seed {
				if err := monolith.Seed(context.Background(), s.DB()); err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			if err := s.DB().Raw("SELECT (SELECT COUNT(*) FROM catalog_products) + (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM inv_stock)").Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != int64(want) {
				t.Fatalf("%d rows after Seed, want %d", n, want)
			}
		})
	}
}

// recordingInventory stands in for an extracted inventory service's client:
// it records the calls orders make and forwards them, or refuses them.
type recordingInventory struct {
	inventory.API
	calls  atomic.Int64
	refuse bool
}

func (r *recordingInventory) Reserve(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	r.calls.Add(1)
	if r.refuse {
		return inventory.Level{}, fmt.Errorf("remote inventory: %w", inventory.ErrOutOfStock)
	}
	return r.API.Reserve(ctx, ref, m)
}

func (r *recordingInventory) ReserveAll(ctx context.Context, rs []inventory.Reservation) ([]inventory.Level, error) {
	r.calls.Add(1)
	if r.refuse {
		return nil, fmt.Errorf("remote inventory: %w", inventory.ErrOutOfStock)
	}
	return r.API.ReserveAll(ctx, rs)
}

func (r *recordingInventory) Release(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	r.calls.Add(1)
	return r.API.Release(ctx, ref, m)
}

func TestInventorySwitch(t *testing.T) {
	shop := shoptest.New(t, dbtest.SQLiteDSN(t))
	p := shop.CreateProduct("SWITCH-1", 100)
	shop.AddStock(p.Ref, "AMS1", 10)
	c := shop.CreateCustomer("switch@example.com")
	place := func() *shoptest.Response {
		return shop.Post("/api/orders", map[string]any{"customer_id": c.ID, "lines": []map[string]any{{"sku": "SWITCH-1", "quantity": 1}}})
	}
	remote := &recordingInventory{API: shop.Inventory()}
	shop.SetInventoryAPI(remote)
	if shop.InventoryAPI() != remote {
		t.Fatal("InventoryAPI is not the API set")
	}
	var o orders.Order
	place().Expect(http.StatusCreated).Decode(&o)
	shop.Post(fmt.Sprintf("/api/orders/%d/cancel", o.ID), nil).Expect(http.StatusOK)
	if n := remote.calls.Load(); n != 2 {
		t.Fatalf("orders made %d calls to the switched-in inventory, want 2", n)
	}
	remote.refuse = true
	place().Expect(http.StatusConflict)

	shop.SetInventoryAPI(nil)
	if shop.InventoryAPI() != shop.Inventory() {
		t.Fatal("SetInventoryAPI(nil) did not restore the module")
	}
	place().Expect(http.StatusCreated)
	if n := remote.calls.Load(); n != 3 {
		t.Fatalf("the switched-out inventory got %d calls, want 3", n)
	}
}

func TestInventorySwitchUnderLoad(t *testing.T) {
	shop := shoptest.New(t, dbtest.SQLiteDSN(t))
	p := shop.CreateProduct("SWAP-1", 100)
	shop.AddStock(p.Ref, "AMS1", 1000)
	c := shop.CreateCustomer("swap@example.com")
	remote := &recordingInventory{API: shop.Inventory()}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				shop.SetInventoryAPI(remote)
			} else {
				shop.SetInventoryAPI(nil)
			}
		}
	}()
	for range 40 {
		_, err := shop.Orders().Place(context.Background(), orders.NewOrder{CustomerID: c.ID, Lines: []orders.NewLine{{SKU: "SWAP-1", Quantity: 1}}})
		if err != nil {
			close(stop)
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	st, err := shop.Inventory().Stock(context.Background(), p.Ref)
	if err != nil || st.Reserved != 40 {
		t.Fatalf("reserved %+v, %v; want 40 whichever API took each order", st, err)
	}
}

func TestRun(t *testing.T) {
	cfg := shoptest.Config(dbtest.SQLiteDSN(t))
	seed := true
	cfg.Seed = &seed
	shop, err := monolith.New(cfg, httpx.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cancel, done := lifecycletest.Start(t, shop)
	base := "http://" + shop.Addr()
	poll(t, "/readyz", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	resp, err := http.Get(base + "/api/catalog/products/1")
	if err != nil {
		t.Fatal(err)
	}
	var p catalog.Product
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if err != nil || p.SKU != "COF-ETH-250" {
		t.Fatalf("product 1 = %+v, %v", p, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := shop.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("second Run = %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("the shop still serves after Run returned")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cfg := shoptest.Config("mysql://nope")
	_, err := monolith.New(cfg, nil)
	if err == nil || !errors.Is(err, db.ErrBadDSN) {
		t.Fatalf("New with a bad DSN = %v", err)
	}
}

// TestConfigCreditLimit: the payments module's default credit limit
// defaults when zero and is refused outside its range.
func TestConfigCreditLimit(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		ok    bool
	}{{0, true}, {1, true}, {payments.MaxCreditLimitCents, true}, {-1, false}, {payments.MaxCreditLimitCents + 1, false}} {
		cfg := monolith.Config{CreditLimitCents: tc.limit}
		cfg.SetDefaults(t.TempDir())
		err := cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "credit_limit_cents")) {
			t.Errorf("credit_limit_cents %d: %v", tc.limit, err)
		}
		if tc.limit == 0 && cfg.CreditLimitCents != payments.DefaultCreditLimitCents {
			t.Errorf("zero gave %d, want the default %d", cfg.CreditLimitCents, payments.DefaultCreditLimitCents)
		}
	}
}
