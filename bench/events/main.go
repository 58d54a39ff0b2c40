// Command events measures the change-data path on SQLite and Postgres: the
// relay's throughput from a full outbox to the broker, against a baseline of
// kafka-go writing the same messages straight to the same broker, and the
// end-to-end latency from a producer's commit to a consumer's commit at a
// steady rate. `make bench` runs it; it prints a report, or JSON with -json.
//
//	go run ./bench/events -dialects sqlite,postgres -events 200000 -rate 1000 -duration 20s
//
// Postgres comes from -postgres-dsn or STRANGLER_TEST_POSTGRES_DSN: the
// bench creates a database of its own there and drops it after.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for database/sql
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/broker"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db"
)

// profilePath is where -cpuprofile writes the throughput run's profile.
var profilePath string

type options struct {
	dialects    []string
	events      int
	rate        int
	duration    time.Duration
	postgresDSN string
	batch       int
	jsonOut     bool
}

// Result is one dialect's figures.
type Result struct {
	Dialect string `json:"dialect"`
	// Throughput, events per second.
	Events            int     `json:"events"`
	BaselinePerSec    float64 `json:"baseline_kafka_go_events_per_sec"`
	InsertPerSec      float64 `json:"outbox_insert_events_per_sec"`
	RelayPerSec       float64 `json:"relay_events_per_sec"`
	RelayToBaseline   float64 `json:"relay_to_baseline_ratio"`
	RelayReadShare    float64 `json:"relay_read_share"`
	RelayPublishShare float64 `json:"relay_publish_share"`
	RelayCommitShare  float64 `json:"relay_commit_share"`
	RelayBatches      int     `json:"relay_batches"`
	// Latency, commit to handled, at Rate events per second.
	Rate         int     `json:"rate"`
	Sent         int     `json:"sent"`
	Handled      int     `json:"handled"`
	AchievedRate float64 `json:"achieved_rate"`
	P50ms        float64 `json:"p50_ms"`
	P90ms        float64 `json:"p90_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	RelayDelayMs float64 `json:"mean_commit_to_published_ms"`
	// RelayDelayP99Ms is the 99th percentile of occurred_at to published,
	// read off the relay's histogram buckets (an upper bound).
	RelayDelayP99Ms float64 `json:"p99_commit_to_published_ms_bucket"`
	ProducerTxMs    float64 `json:"mean_producer_tx_ms"`
	ThroughputOK    bool    `json:"throughput_target_met"`
	LatencyOK       bool    `json:"latency_target_met"`
	ThroughputMin   float64 `json:"throughput_target"`
	LatencyMax      float64 `json:"latency_target_p99_ms"`
}

func main() {
	var opt options
	var dialects string
	flag.StringVar(&dialects, "dialects", "sqlite,postgres", "engines to measure, comma-separated")
	flag.IntVar(&opt.events, "events", 200000, "events in the relay throughput run")
	flag.IntVar(&opt.rate, "rate", 1000, "events per second in the latency run")
	flag.DurationVar(&opt.duration, "duration", 20*time.Second, "length of the latency run")
	flag.StringVar(&opt.postgresDSN, "postgres-dsn", os.Getenv("STRANGLER_TEST_POSTGRES_DSN"), "Postgres server to create the bench database on")
	flag.IntVar(&opt.batch, "batch", 4096, "relay batch size")
	flag.BoolVar(&opt.jsonOut, "json", false, "print JSON instead of a report")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the relay throughput run to this file")
	flag.Parse()
	profilePath = *cpuProfile
	opt.dialects = strings.Split(dialects, ",")

	var results []Result
	for _, d := range opt.dialects {
		res, err := bench(context.Background(), strings.TrimSpace(d), opt)
		if err != nil {
			fmt.Fprintf(os.Stderr, "events bench %s: %v\n", d, err)
			os.Exit(1)
		}
		results = append(results, res)
		if !opt.jsonOut {
			report(res)
		}
	}
	if opt.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	}
}

func report(r Result) {
	fmt.Printf("change-data events on %s\n", r.Dialect)
	fmt.Printf("  baseline: kafka-go writer -> broker   %9.0f events/s\n", r.BaselinePerSec)
	fmt.Printf("  outbox inserts (1,000 per tx)         %9.0f events/s\n", r.InsertPerSec)
	fmt.Printf("  relay: outbox -> broker               %9.0f events/s  (%.2f of baseline; target >= %.0f: %s)\n",
		r.RelayPerSec, r.RelayToBaseline, r.ThroughputMin, okString(r.ThroughputOK))
	fmt.Printf("    relay time: read %.0f%%, publish %.0f%%, commit %.0f%%, other %.0f%% over %d batches\n",
		100*r.RelayReadShare, 100*r.RelayPublishShare, 100*r.RelayCommitShare,
		100*math.Max(0, 1-r.RelayReadShare-r.RelayPublishShare-r.RelayCommitShare), r.RelayBatches)
	fmt.Printf("  end to end at %d events/s (%.0f achieved), commit -> handled: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d/%d handled; target p99 < %.0f ms: %s)\n",
		r.Rate, r.AchievedRate, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.Handled, r.Sent, r.LatencyMax, okString(r.LatencyOK))
	fmt.Printf("    mean producer transaction %.2f ms; commit -> published: mean %.1f ms, p99 <= %.0f ms (relay's share)\n", r.ProducerTxMs, r.RelayDelayMs, r.RelayDelayP99Ms)
}

func okString(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// database makes a fresh database of the dialect and returns its DSN and a
// function that drops it.
func database(ctx context.Context, dialect, dir string, opt options, name string) (string, func(), error) {
	switch dialect {
	case "sqlite":
		return "sqlite:" + filepath.Join(dir, name+".db"), func() {}, nil
	case "postgres":
		if opt.postgresDSN == "" {
			return "", nil, errors.New("no Postgres: set -postgres-dsn or STRANGLER_TEST_POSTGRES_DSN")
		}
		admin, err := sql.Open("pgx", opt.postgresDSN)
		if err != nil {
			return "", nil, err
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		dbName := "strangler_bench_" + name + "_" + hex.EncodeToString(b[:])
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+dbName+`"`); err != nil {
			admin.Close()
			return "", nil, err
		}
		u, err := url.Parse(opt.postgresDSN)
		if err != nil {
			admin.Close()
			return "", nil, err
		}
		u.Path = "/" + dbName
		return u.String(), func() {
			_, _ = admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+dbName+`" WITH (FORCE)`)
			admin.Close()
		}, nil
	}
	return "", nil, fmt.Errorf("unknown dialect %q", dialect)
}

func open(ctx context.Context, dsn string, sets ...db.Migrations) (*gorm.DB, error) {
	if err := db.MigrateUp(ctx, dsn, sets...); err != nil {
		return nil, err
	}
	return db.Open(ctx, dsn, db.Options{MaxOpenConns: 8})
}

var quiet = slog.New(slog.DiscardHandler)

// payload is about the size of a typical domain event: an order with a few
// lines.
func payload(i int) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("o-%d", i), "customer_id": fmt.Sprintf("c-%d", i%997), "status": "placed",
		"total_cents": 1000 + i%5000, "currency": "EUR", "version": 1,
		"lines": []map[string]any{{"sku": "SKU-1", "qty": 1, "price_cents": 500}, {"sku": "SKU-2", "qty": 2, "price_cents": 250}},
	}
}

func bench(ctx context.Context, dialect string, opt options) (Result, error) {
	res := Result{Dialect: dialect, Events: opt.events, Rate: opt.rate, ThroughputMin: 50000, LatencyMax: 50}
	dir, err := os.MkdirTemp("", "strangler-events-bench")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", Dir: filepath.Join(dir, "broker"), Partitions: 6}, quiet)
	if err != nil {
		return res, err
	}
	bctx, stopBroker := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- b.Run(bctx) }()
	select {
	case <-b.Started():
	case err := <-stopped:
		stopBroker()
		return res, err
	}
	defer func() { stopBroker(); <-stopped }()
	brokers := []string{b.Addr()}

	// Latency first, on a quiet database: the throughput run leaves work
	// behind (autovacuum, and a checkpoint when its database is dropped)
	// that would land in the latency run's tail.
	if err := latency(ctx, dialect, dir, brokers, opt, &res); err != nil {
		return res, fmt.Errorf("latency: %w", err)
	}
	if err := baseline(ctx, brokers, opt, &res); err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	if err := throughput(ctx, dialect, dir, brokers, opt, &res); err != nil {
		return res, fmt.Errorf("throughput: %w", err)
	}
	res.ThroughputOK = res.RelayPerSec >= res.ThroughputMin
	res.LatencyOK = res.P99ms < res.LatencyMax && res.Handled == res.Sent
	return res, nil
}

// messages builds n events as the relay would publish them.
func messages(prefix string, n int) ([]changefeed.Event, []kafka.Message, error) {
	events := make([]changefeed.Event, n)
	msgs := make([]kafka.Message, n)
	for i := range events {
		ev, err := changefeed.NewEvent("order", fmt.Sprintf("o-%d", i%10000), "order.placed", payload(i))
		if err != nil {
			return nil, nil, err
		}
		ev.Source = "bench"
		events[i] = ev
		m := ev
		m.OccurredAt = time.Now()
		msgs[i] = changefeed.Message(prefix, m)
	}
	return events, msgs, nil
}

// baseline writes the messages with kafka-go alone, configured as the relay
// configures it, in the relay's batch size: the ceiling for any relay on this
// broker and client.
func baseline(ctx context.Context, brokers []string, opt options, res *Result) error {
	_, msgs, err := messages("baseline", opt.events)
	if err != nil {
		return err
	}
	transport := &kafka.Transport{}
	topics := changefeed.NewTopics(brokers, 6, 0, transport)
	if err := topics.Ensure(ctx, "baseline.order"); err != nil {
		return err
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: opt.batch, BatchBytes: 1 << 20, BatchTimeout: time.Millisecond, Transport: transport}
	defer w.Close()
	start := time.Now()
	for i := 0; i < len(msgs); {
		// Cut batches as the relay does, by count and by bytes.
		j, size := i, 0
		for j < len(msgs) && j-i < opt.batch && size < 900<<10 {
			size += len(msgs[j].Value) + len(msgs[j].Key) + 200
			j++
		}
		if err := w.WriteMessages(ctx, msgs[i:j]...); err != nil {
			return err
		}
		i = j
	}
	res.BaselinePerSec = float64(len(msgs)) / time.Since(start).Seconds()
	return nil
}

func throughput(ctx context.Context, dialect, dir string, brokers []string, opt options, res *Result) error {
	dsn, drop, err := database(ctx, dialect, dir, opt, "throughput")
	if err != nil {
		return err
	}
	defer drop()
	gdb, err := open(ctx, dsn, outbox.Migrations())
	if err != nil {
		return err
	}
	defer db.Close(gdb)
	events, _, err := messages("", opt.events)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := 0; i < len(events); i += 1000 {
		chunk := events[i:min(i+1000, len(events))]
		if err := db.Transact(ctx, gdb, func(ctx context.Context) error {
			return outbox.AddContext(ctx, gdb, chunk...)
		}); err != nil {
			return err
		}
	}
	res.InsertPerSec = float64(len(events)) / time.Since(start).Seconds()
	if dialect == "postgres" {
		// Fresh statistics, as autovacuum would have them on a live table.
		if err := gdb.Exec("ANALYZE outbox").Error; err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	r, err := relay.New(relay.Config{Name: "bench", BatchSize: opt.batch}, relay.Options{
		DB: gdb, Brokers: brokers, Registerer: reg, Logger: quiet,
		Kafka: changefeed.KafkaConfig{TopicPrefix: "tput", Partitions: 6},
	})
	if err != nil {
		return err
	}
	if profilePath != "" {
		f, err := os.Create(profilePath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- r.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for r.Published() < int64(len(events)) {
		if time.Now().After(deadline) {
			cancel()
			return fmt.Errorf("relay published %d of %d in 10 minutes", r.Published(), len(events))
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		return err
	}
	res.RelayPerSec = float64(len(events)) / elapsed.Seconds()
	res.RelayToBaseline = res.RelayPerSec / res.BaselinePerSec
	read, _ := histogram(reg, "changefeed_relay_read_duration_seconds")
	publish, batches := histogram(reg, "changefeed_relay_publish_duration_seconds")
	commit, _ := histogram(reg, "changefeed_relay_commit_duration_seconds")
	res.RelayReadShare = read / elapsed.Seconds()
	res.RelayPublishShare = publish / elapsed.Seconds()
	res.RelayCommitShare = commit / elapsed.Seconds()
	res.RelayBatches = int(batches)
	return nil
}

// quantile returns the upper bound of the bucket that holds quantile q of a
// histogram family in reg.
func quantile(reg *prometheus.Registry, name string, q float64) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			want := q * float64(h.GetSampleCount())
			for _, b := range h.GetBucket() {
				if float64(b.GetCumulativeCount()) >= want {
					return b.GetUpperBound()
				}
			}
		}
	}
	return math.Inf(1)
}

// histogram returns the sum and count of a histogram family in reg.
func histogram(reg *prometheus.Registry, name string) (sum float64, count uint64) {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
				count += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return sum, count
}

func latency(ctx context.Context, dialect, dir string, brokers []string, opt options, res *Result) error {
	srcDSN, dropSrc, err := database(ctx, dialect, dir, opt, "latency_src")
	if err != nil {
		return err
	}
	defer dropSrc()
	dstDSN, dropDst, err := database(ctx, dialect, dir, opt, "latency_dst")
	if err != nil {
		return err
	}
	defer dropDst()
	src, err := open(ctx, srcDSN, outbox.Migrations())
	if err != nil {
		return err
	}
	defer db.Close(src)
	dst, err := open(ctx, dstDSN, consumer.Migrations())
	if err != nil {
		return err
	}
	defer db.Close(dst)
	if err := dst.Exec("CREATE TABLE bench_orders (id TEXT PRIMARY KEY, total BIGINT NOT NULL)").Error; err != nil {
		return err
	}

	kcfg := changefeed.KafkaConfig{TopicPrefix: "lat", Partitions: 6}
	relayReg := prometheus.NewRegistry()
	r, err := relay.New(relay.Config{Name: "latency"}, relay.Options{DB: src, Brokers: brokers, Kafka: kcfg, Logger: quiet, Registerer: relayReg})
	if err != nil {
		return err
	}
	var (
		mu        sync.Mutex
		committed = map[string]time.Time{}
		handledAt = map[string]time.Time{}
	)
	c, err := consumer.New(consumer.Config{Name: "bench", Topics: []string{changefeed.Topic("lat", "order")}, MaxWait: 500 * time.Millisecond},
		consumer.Options{DB: dst, Brokers: brokers, Kafka: kcfg, Logger: quiet, OnHandled: func(ev changefeed.Event, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			handledAt[ev.ID.String()] = at
		}})
	if err != nil {
		return err
	}
	c.Handle("order.placed", 1, func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
		var p struct {
			ID         string `json:"id"`
			TotalCents int64  `json:"total_cents"`
		}
		if err := ev.Decode(&p); err != nil {
			return err
		}
		return tx.Exec("INSERT INTO bench_orders (id, total) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET total = excluded.total", p.ID, p.TotalCents).Error
	})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.Run(rctx) }()
	go func() { defer wg.Done(); _ = c.Run(rctx) }()
	defer wg.Wait()
	defer cancel()

	write := func(i int) (changefeed.Event, time.Duration, error) {
		ev, err := changefeed.NewEvent("order", fmt.Sprintf("o-%d", i), "order.placed", payload(i))
		if err != nil {
			return ev, 0, err
		}
		ev.Source = "bench"
		if ev.ID, err = uuid.NewV7(); err != nil {
			return ev, 0, err
		}
		t0 := time.Now()
		err = db.Transact(ctx, src, func(ctx context.Context) error {
			return outbox.AddContext(ctx, src, ev)
		})
		now := time.Now()
		mu.Lock()
		committed[ev.ID.String()] = now
		mu.Unlock()
		return ev, now.Sub(t0), err
	}
	// Warm up until the consumer has joined its group and handles events.
	warm := c.Handled()
	for i := 0; c.Handled() == warm; i++ {
		if i > 600 {
			return errors.New("the consumer handled nothing in a minute")
		}
		if _, _, err := write(-1 - i); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	mu.Lock()
	committed = map[string]time.Time{}
	mu.Unlock()
	handledBefore := c.Handled()

	// A steady rate: event i is due at start + i/rate, one per transaction,
	// as a stream of single orders would write them. Several writers share
	// the schedule, as the requests of a web application would, so that a
	// transaction's commit latency does not slow the rate down.
	n := int(opt.duration.Seconds() * float64(opt.rate))
	interval := time.Second / time.Duration(opt.rate)
	due := make(chan int, n)
	var (
		txMu    sync.Mutex
		txTotal time.Duration
		writers sync.WaitGroup
	)
	errs := make(chan error, 8)
	for range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range due {
				_, tx, err := write(i)
				if err != nil {
					errs <- err
					return
				}
				txMu.Lock()
				txTotal += tx
				txMu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		due <- i
	}
	close(due)
	writers.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	res.AchievedRate = float64(n) / time.Since(start).Seconds()
	res.Sent = n
	res.ProducerTxMs = float64(txTotal) / float64(n) / float64(time.Millisecond)
	deadline := time.Now().Add(2 * time.Minute)
	for c.Handled()-handledBefore < int64(n) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []float64
	for id, t := range committed {
		if h, ok := handledAt[id]; ok {
			lat = append(lat, math.Max(0, float64(h.Sub(t))/float64(time.Millisecond)))
		}
	}
	res.Handled = len(lat)
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return math.NaN()
		}
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	res.P50ms, res.P90ms, res.P99ms, res.MaxMs = pct(0.50), pct(0.90), pct(0.99), pct(1)
	delaySum, delayCount := histogram(relayReg, "changefeed_relay_event_delay_seconds")
	if delayCount > 0 {
		res.RelayDelayMs = 1000 * delaySum / float64(delayCount)
	}
	res.RelayDelayP99Ms = 1000 * quantile(relayReg, "changefeed_relay_event_delay_seconds", 0.99)
	return nil
}
