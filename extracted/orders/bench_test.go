package orders_test

import (
	"flag"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/loadgen"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/payments"
)

// The settings of BenchmarkPlace, after -args: `make bench` (bench/run.sh)
// passes them from ORDERS_CLIENTS, ORDERS_DURATION and ORDERS_ROUNDS.
var (
	placeClients   = flag.Int("place.clients", 16, "BenchmarkPlace: concurrent HTTP clients placing orders on each side")
	placeDuration  = flag.Duration("place.duration", 10*time.Second, "BenchmarkPlace: how long each side places orders, over all rounds")
	placeRounds    = flag.Int("place.rounds", 2, "BenchmarkPlace: rounds, in which the sides take turns")
	placeCustomers = flag.Int("place.customers", 16, "BenchmarkPlace: customers the orders cycle through")
)

// placeSides are the two ways of placing an order that BenchmarkPlace
// compares.
var placeSides = []string{"monolith", "saga"}

// BenchmarkPlace measures placing orders over HTTP on loopback, with
// -place.clients clients for -place.duration on each side, on SQLite and on
// Postgres (skipped without STRANGLER_TEST_POSTGRES_DSN), in the same run:
//
//   - monolith: the monolith's POST /api/orders, one in-process
//     transaction that checks the customer, prices the lines, reserves the
//     stock and writes the order and its outbox events;
//   - saga: the orders service's POST /api/orders, the placement saga
//     (reserve at the inventory service over HTTP, authorize at the
//     monolith's payments module over HTTP, confirm by appending
//     order.placed to the event store), with its log persisted before each
//     step.
//
// The orders are one line each, cycling -place.customers customers and two
// products with a million units each. Each side first places a few orders
// unmeasured (connections, caches); then the sides take turns for
// -place.rounds rounds, so that a slow spell of a shared machine falls on
// both. It prints orders/s, p50 and p99 of each side and the saga's ratio
// to the monolith; a failed order (any answer but 201) is counted and
// shown, and fails the benchmark. It ignores b.N: run it with -benchtime 1x.
func BenchmarkPlace(b *testing.B) {
	var rows []string
	for _, d := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", dbtest.SQLiteDSN}, {"postgres", dbtest.PostgresDSN}} {
		ran := false
		ok := b.Run(d.name, func(b *testing.B) {
			res := benchPlace(b, d.dsn)
			ran = true
			for _, side := range placeSides {
				r := res[side]
				rows = append(rows, fmt.Sprintf("%-9s %-9s %8d %7d %10.1f %8.2f %8.2f", d.name, side, r.ok, r.failed, r.rate(), r.pct(0.5), r.pct(0.99)))
				if r.firstFail != "" {
					rows = append(rows, "  first failure: "+r.firstFail)
				}
			}
			m, s := res["monolith"], res["saga"]
			rows = append(rows, fmt.Sprintf("%-9s saga/monolith: orders/s %.2fx, p50 %.2fx, p99 %.2fx", d.name, s.rate()/m.rate(), s.pct(0.5)/m.pct(0.5), s.pct(0.99)/m.pct(0.99)))
			b.ReportMetric(m.rate(), "monolith-orders/s")
			b.ReportMetric(s.rate(), "saga-orders/s")
			b.ReportMetric(s.pct(0.99), "saga-p99-ms")
			b.ReportMetric(m.pct(0.99), "monolith-p99-ms")
		})
		switch {
		case !ok:
			rows = append(rows, fmt.Sprintf("%-9s FAILED (see above)", d.name))
		case !ran:
			rows = append(rows, fmt.Sprintf("%-9s skipped: no Postgres (%s is not set)", d.name, dbtest.EnvPostgresDSN))
		}
	}
	fmt.Printf("Orders placement benchmark: %d clients, %s per side in %d rounds, one-line orders over HTTP on loopback, %d customers\n",
		*placeClients, *placeDuration, *placeRounds, *placeCustomers)
	fmt.Printf("%-9s %-9s %8s %7s %10s %8s %8s\n", "dialect", "side", "orders", "failed", "orders/s", "p50_ms", "p99_ms")
	fmt.Println(strings.Join(rows, "\n"))
	fmt.Println()
}

// benchPlace builds the world on the dialect of dsn and measures both
// sides.
func benchPlace(b *testing.B, dsn func(testing.TB) string) map[string]*placeRun {
	shopDSN := dsn(b)
	w := newWorld(b, shopDSN)
	cs := []customers.Customer{w.customer}
	for i := 1; i < *placeCustomers; i++ {
		c := w.shop.CreateCustomer(fmt.Sprintf("bench%d@example.nl", i))
		cs = append(cs, c)
		w.events = append(w.events, w.event(aclorders.CustomerAggregate, fmt.Sprint(c.ID), aclorders.CustomerCreated, c))
	}
	for _, c := range cs {
		if _, err := w.shop.Payments().SetLimit(b.Context(), c.ID, paymentsLimit(payments.MaxCreditLimitCents)); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range w.products {
		w.shop.AddStock(p.Ref, "AMS1", 1_000_000)
		w.call(http.MethodPost, w.invURL+"/v1/items/"+p.SKU+"/adjustments", map[string]any{"warehouse": "nl-ams", "delta": 1_000_000, "reason": "bench"}).expect(http.StatusOK)
	}
	_, svcURL := w.startOrders(siblingDSN(b, shopDSN))
	urls := map[string]string{"monolith": w.shop.URL + "/api/orders", "saga": svcURL + "/api/orders"}
	body := func(n int) []byte {
		return fmt.Appendf(nil, `{"customer_id":%d,"lines":[{"sku":%q,"quantity":1}]}`, cs[n%len(cs)].ID, w.products[n%len(w.products)].SKU)
	}
	out := map[string]*placeRun{}
	for _, side := range placeSides {
		out[side] = &placeRun{}
		warm := &placeRun{}
		warm.place(urls[side], *placeClients, 0, 5*(*placeClients), body)
		if warm.failed > 0 {
			b.Fatalf("%s: warm-up: %d of %d orders failed, first: %s", side, warm.failed, warm.ok+warm.failed, warm.firstFail)
		}
	}
	per := *placeDuration / time.Duration(max(*placeRounds, 1))
	for range max(*placeRounds, 1) {
		for _, side := range placeSides {
			out[side].place(urls[side], *placeClients, per, 0, body)
		}
	}
	for _, side := range placeSides {
		if r := out[side]; r.failed > 0 {
			b.Errorf("%s: %d of %d orders failed, first: %s", side, r.failed, r.ok+r.failed, r.firstFail)
		}
	}
	return out
}

// placeRun is what one side's orders gave, over its rounds.
type placeRun struct {
	mu        sync.Mutex
	ok        int
	failed    int
	firstFail string
	took      time.Duration
	latencies []time.Duration
}

// place places orders at url from clients concurrent clients, for d, or
// count orders when d is 0, and adds what it saw to r.
func (r *placeRun) place(url string, clients int, d time.Duration, count int, body func(n int) []byte) {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var (
		wg   sync.WaitGroup
		next int
		mu   sync.Mutex
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next, count == 0 || next <= count
	}
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			for {
				n, ok := take()
				if !ok || (d > 0 && time.Now().After(deadline)) {
					return
				}
				t0 := time.Now()
				status, answer, err := loadgen.PostJSON(client, url, body(n))
				took := time.Since(t0)
				r.mu.Lock()
				r.latencies = append(r.latencies, took)
				switch {
				case err != nil:
					r.failed++
					r.firstFail = firstOf(r.firstFail, err.Error())
				case status != http.StatusCreated:
					r.failed++
					r.firstFail = firstOf(r.firstFail, fmt.Sprintf("%d %.300s", status, answer))
				default:
					r.ok++
				}
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.took += time.Since(start)
}

func firstOf(first, s string) string {
	if first != "" {
		return first
	}
	return s
}

// rate is the orders placed per second.
func (r *placeRun) rate() float64 { return float64(r.ok) / r.took.Seconds() }

// pct is the q-quantile of the latencies in milliseconds.
func (r *placeRun) pct(q float64) float64 {
	return float64(loadgen.Percentile(r.latencies, q).Microseconds()) / 1000
}

func paymentsLimit(cents int64) payments.LimitPatch {
	return payments.LimitPatch{CreditLimitCents: &cents}
}
