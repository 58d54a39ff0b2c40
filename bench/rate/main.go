// Command rate places orders at a fixed rate (an open loop, as wrk2 does,
// which Debian does not package) and prints the achieved rate, the latency
// percentiles and the failures, with the load generator's own lag apart
// (internal/loadgen). wrk measures how many orders a closed loop of
// connections gets through; this measures the latency at a given rate,
// counted from each order's planned send time, so that a stall of the
// system shows in the percentiles instead of slowing the sends down.
// bench/monolith/run.sh runs it at 250 orders/s, directly and through the
// proxy.
//
//	go run ./bench/rate -url http://127.0.0.1:9001 -rate 250 -duration 10s -skus COF-ETH-250,COF-COL-250
//
// The orders are those of bench/monolith/order.lua: two lines each,
// cycling the customers 1 to -customers and the SKUs, so that the load
// spreads over many stock levels. Its last line is the result in
// key=value form for scripts.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stranglerkit/strangler/internal/loadgen"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:9001", "the shop's base URL (the monolith or the proxy in front of it)")
	rate := flag.Int("rate", 250, "orders per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	customers := flag.Int("customers", 20, "customers 1 to N place the orders")
	skuList := flag.String("skus", "", "comma-separated SKUs to order, at least two")
	workers := flag.Int("workers", 256, "orders in flight at most")
	flag.Parse()
	skus := strings.Split(*skuList, ",")
	if len(skus) < 2 || *customers < 1 {
		fmt.Fprintln(os.Stderr, "rate: give -skus with at least two SKUs and -customers >= 1")
		os.Exit(2)
	}
	r := run(*url, *rate, *duration, *customers, skus, *workers)
	fmt.Println(r.summary())
	fmt.Println(r.line())
	if r.failed > 0 {
		os.Exit(1)
	}
}

type result struct {
	rate      int
	took      time.Duration
	ok        int
	failed    int
	firstFail string
	latencies []time.Duration
	lag       loadgen.Lag
}

// run sends at rate for d and returns what it saw.
func run(base string, rate int, d time.Duration, customers int, skus []string, workers int) *result {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var (
		mu  sync.Mutex
		res = &result{rate: rate}
		n   atomic.Int64
	)
	p := loadgen.New(loadgen.Config{Rate: rate, Workers: workers}, func(_ int, lag time.Duration) {
		// The latency counts from the planned send time: the lag is part
		// of what a client at this rate would wait.
		start := time.Now().Add(-lag)
		status, body, err := loadgen.PostJSON(client, base+"/api/orders", orderBody(int(n.Add(1)), customers, skus))
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		res.latencies = append(res.latencies, took)
		switch {
		case err != nil:
			res.failed++
			res.firstFail = firstOf(res.firstFail, err.Error())
		case status/100 != 2:
			res.failed++
			res.firstFail = firstOf(res.firstFail, fmt.Sprintf("%d %.300s", status, body))
		default:
			res.ok++
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	res.lag = p.Run(ctx)
	res.took = time.Since(start)
	return res
}

// orderBody is the n-th order: the same cycle as order.lua's.
func orderBody(n, customers int, skus []string) []byte {
	k := len(skus)
	a := skus[n%k]
	b := skus[(n+1+(n/k)%(k-1))%k]
	return fmt.Appendf(nil, `{"customer_id":%d,"lines":[{"sku":%q,"quantity":1},{"sku":%q,"quantity":2}]}`, n%customers+1, a, b)
}

func firstOf(cur, s string) string {
	if cur != "" {
		return cur
	}
	return s
}

func (r *result) rps() float64 { return float64(r.ok+r.failed) / r.took.Seconds() }

func (r *result) pct(q float64) float64 {
	return float64(loadgen.Percentile(r.latencies, q).Microseconds()) / 1000
}

func (r *result) summary() string {
	s := fmt.Sprintf("rate %d/s planned: %d answers in %.1fs (%.0f/s), %d ok, %d failed; latency from the planned send p50 %.3f ms, p99 %.3f ms, max %.3f ms\nload generator: %s",
		r.rate, r.ok+r.failed, r.took.Seconds(), r.rps(), r.ok, r.failed, r.pct(0.5), r.pct(0.99), r.pct(1), r.lag)
	if r.firstFail != "" {
		s += "\nfirst failure: " + r.firstFail
	}
	return s
}

// line is the result for scripts.
func (r *result) line() string {
	return fmt.Sprintf("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f failed=%d late=%d unsent=%d",
		r.rps(), r.pct(0.5), r.pct(0.99), r.failed, r.lag.Late, r.lag.Unsent)
}
