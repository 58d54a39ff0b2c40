package backfill_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// products is a table of a user's application: not the shop's, not the
// test order app's.
func products(t *testing.T, gdb *gorm.DB, n int) {
	t.Helper()
	changefeedtest.Must(t, gdb.Exec(`CREATE TABLE products (id BIGINT PRIMARY KEY, title TEXT NOT NULL, price_cents BIGINT NOT NULL, secret TEXT)`).Error)
	for i := 1; i <= n; i++ {
		changefeedtest.Must(t, gdb.Exec("INSERT INTO products (id, title, price_cents, secret) VALUES (?, ?, ?, 'x')", i, fmt.Sprintf("p%d", i), i*100).Error)
	}
}

// change updates a product and writes its event, as the application would.
func change(ctx context.Context, gdb *gorm.DB, id int, title string) error {
	return db.Transact(ctx, gdb, func(ctx context.Context) error {
		tx := db.Conn(ctx, gdb)
		if err := tx.Exec("UPDATE products SET title = ? WHERE id = ?", title, id).Error; err != nil {
			return err
		}
		var price int64
		if err := tx.Raw("SELECT price_cents FROM products WHERE id = ?", id).Scan(&price).Error; err != nil {
			return err
		}
		ev, err := changefeed.NewEvent("product", fmt.Sprint(id), "product.changed", map[string]any{"id": id, "name": title, "price_cents": price})
		if err != nil {
			return err
		}
		ev.Source = "app"
		return outbox.AddContext(ctx, gdb, ev)
	})
}

type event struct {
	AggregateID string `gorm:"column:aggregateid"`
	Type        string
	Payload     string
}

func outboxEvents(t *testing.T, gdb *gorm.DB) []event {
	t.Helper()
	var out []event
	changefeedtest.Must(t, gdb.Raw("SELECT aggregateid, type, payload FROM outbox ORDER BY seq").Scan(&out).Error)
	return out
}

var job = backfill.Job{
	Name: "products-v1", Table: "products", Key: "id",
	Columns: []string{"id", "title", "price_cents"}, Rename: map[string]string{"title": "name"},
	AggregateType: "product", ChunkSize: 10,
}

func TestBackfill(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		products(t, gdb, 25)
		ctx := context.Background()
		res, err := backfill.Run(ctx, job, backfill.Options{DB: gdb, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		if !res.Done || res.Rows != 25 || res.Events != 25 || res.Dropped != 0 || res.Chunks != 3 || res.LastKey != "25" {
			t.Fatalf("result %+v", res)
		}
		evs := outboxEvents(t, gdb)
		if len(evs) != 25 {
			t.Fatalf("%d events, want 25", len(evs))
		}
		for i, e := range evs {
			var p map[string]any
			changefeedtest.Must(t, json.Unmarshal([]byte(e.Payload), &p))
			if e.AggregateID != fmt.Sprint(i+1) || e.Type != "product.snapshot" || p["name"] != fmt.Sprintf("p%d", i+1) || p["price_cents"] != float64((i+1)*100) || p["secret"] != nil || len(p) != 3 {
				t.Fatalf("event %d: %+v", i, e)
			}
		}
		// A finished job does nothing the second time; a restart does it
		// again.
		res, err = backfill.Run(ctx, job, backfill.Options{DB: gdb})
		changefeedtest.Must(t, err)
		if !res.Done || len(outboxEvents(t, gdb)) != 25 {
			t.Fatalf("second run: %+v, %d events", res, len(outboxEvents(t, gdb)))
		}
		res, err = backfill.Run(ctx, job, backfill.Options{DB: gdb, Restart: true})
		changefeedtest.Must(t, err)
		if res.Events != 25 || res.Resumed || len(outboxEvents(t, gdb)) != 50 {
			t.Fatalf("restart: %+v, %d events", res, len(outboxEvents(t, gdb)))
		}
		// A job name is tied to its table.
		other := job
		other.Table = "other"
		if _, err := backfill.Run(ctx, other, backfill.Options{DB: gdb}); err == nil || !strings.Contains(err.Error(), "snapshotted table products before") {
			t.Fatalf("reusing a job name for another table = %v", err)
		}
	})
}

// TestBackfillWatermark changes rows while their chunk is in flight: the
// live change wins, and the snapshot's copy of that row is dropped. A row
// changed before its chunk is read is snapshotted with the change.
func TestBackfillWatermark(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		products(t, gdb, 25)
		ctx := context.Background()
		chunk := 0
		res, err := backfill.Run(ctx, job, backfill.Options{DB: gdb, OnChunk: func(ctx context.Context, ids []string) {
			chunk++
			if chunk == 1 {
				// Row 3 is in this chunk, row 15 in the next.
				changefeedtest.Must(t, change(ctx, gdb, 3, "live-3"))
				changefeedtest.Must(t, change(ctx, gdb, 15, "live-15"))
			}
		}})
		changefeedtest.Must(t, err)
		if res.Events != 24 || res.Dropped != 1 {
			t.Fatalf("result %+v, want 24 events and row 3 dropped", res)
		}
		byKey := map[string][]event{}
		for _, e := range outboxEvents(t, gdb) {
			byKey[e.AggregateID] = append(byKey[e.AggregateID], e)
		}
		if k := byKey["3"]; len(k) != 1 || k[0].Type != "product.changed" {
			t.Fatalf("row 3: %+v, want only the live change", k)
		}
		if k := byKey["15"]; len(k) != 2 || k[0].Type != "product.changed" || k[1].Type != "product.snapshot" || !strings.Contains(k[1].Payload, "live-15") {
			t.Fatalf("row 15: %+v, want the live change, then a snapshot that holds it", k)
		}
	})
}

// TestBackfillWaitsForInFlightChange holds a live change to a row of the
// chunk open across the chunk's write (Postgres, where writers overlap):
// the snapshot's insert waits for the aggregate's lock, then finds the
// change and drops its copy.
func TestBackfillWaitsForInFlightChange(t *testing.T) {
	gdb := changefeedtest.Open(t, dbtest.PostgresDSN(t), outbox.Migrations())
	products(t, gdb, 5)
	ctx := context.Background()
	committed := make(chan error, 1)
	res, err := backfill.Run(ctx, job, backfill.Options{DB: gdb, OnChunk: func(ctx context.Context, ids []string) {
		tx := gdb.Begin()
		changefeedtest.Must(t, tx.Exec("UPDATE products SET title = 'in-flight' WHERE id = 4").Error)
		ev, _ := changefeed.NewEvent("product", "4", "product.changed", map[string]any{"id": 4, "name": "in-flight"})
		ev.Source = "app"
		changefeedtest.Must(t, outbox.Add(tx, ev))
		go func() {
			time.Sleep(300 * time.Millisecond)
			committed <- tx.Commit().Error
		}()
	}})
	changefeedtest.Must(t, err)
	changefeedtest.Must(t, <-committed)
	if res.Events != 4 || res.Dropped != 1 {
		t.Fatalf("result %+v, want row 4's snapshot dropped", res)
	}
}

// TestBackfillResume interrupts a backfill between chunks and runs it
// again: it resumes after the last committed chunk, and every row gets one
// snapshot event.
func TestBackfillResume(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		products(t, gdb, 35)
		ctx, cancel := context.WithCancel(context.Background())
		chunk := 0
		_, err := backfill.Run(ctx, job, backfill.Options{DB: gdb, OnChunk: func(context.Context, []string) {
			chunk++
			if chunk == 3 {
				cancel() // the process dies while the third chunk is in flight
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run = %v", err)
		}
		if n := len(outboxEvents(t, gdb)); n != 20 {
			t.Fatalf("%d events after two chunks, want 20", n)
		}
		res, err := backfill.Run(context.Background(), job, backfill.Options{DB: gdb})
		changefeedtest.Must(t, err)
		if !res.Resumed || !res.Done || res.Rows != 35 || res.Events != 35 {
			t.Fatalf("resumed run %+v", res)
		}
		seen := map[string]int{}
		for _, e := range outboxEvents(t, gdb) {
			seen[e.AggregateID]++
		}
		for i := 1; i <= 35; i++ {
			if seen[fmt.Sprint(i)] != 1 {
				t.Fatalf("row %d has %d snapshot events", i, seen[fmt.Sprint(i)])
			}
		}
	})
}

// TestBackfillThenFollow gives a new service its initial copy through the
// stream while the application keeps changing rows: once the backfill is
// done and the stream drained, the copy equals the source.
func TestBackfillThenFollow(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		src := changefeedtest.Open(t, dsn, outbox.Migrations())
		products(t, src, 200)
		dstDSN := dbtest.SQLiteDSN(t)
		if strings.HasPrefix(dsn, "postgres") {
			dstDSN = dbtest.PostgresDSN(t)
		}
		dst := changefeedtest.Open(t, dstDSN, consumer.Migrations())
		changefeedtest.Must(t, dst.Exec("CREATE TABLE catalog (id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents BIGINT NOT NULL)").Error)

		b := changefeedtest.NewBroker(t)
		kcfg := changefeed.KafkaConfig{TopicPrefix: "bf", Partitions: 3}
		r, err := relay.New(relay.Config{Name: "bf", PollInterval: 5 * time.Millisecond}, relay.Options{DB: src, Brokers: b.Brokers(), Kafka: kcfg, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		c, err := consumer.New(consumer.Config{Name: "catalog", Topics: []string{"bf.product"}, MaxWait: 100 * time.Millisecond, SessionTimeout: 3 * time.Second},
			consumer.Options{DB: dst, Brokers: b.Brokers(), Kafka: kcfg, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		upsert := func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
			var p struct {
				ID         json.Number `json:"id"`
				Name       string      `json:"name"`
				PriceCents int64       `json:"price_cents"`
			}
			if err := ev.Decode(&p); err != nil {
				return err
			}
			return tx.Exec(`INSERT INTO catalog (id, name, price_cents) VALUES (?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents`, ev.AggregateID, p.Name, p.PriceCents).Error
		}
		c.Handle("product.snapshot", 1, upsert)
		c.Handle("product.changed", 1, upsert)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = r.Run(ctx) }()
		go func() { _ = c.Run(ctx) }()

		// The application changes rows all along.
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if err := change(ctx, src, 1+(i*37)%200, fmt.Sprintf("v%d", i)); err != nil {
					done <- err
					return
				}
			}
		}()
		j := job
		j.ChunkSize = 25
		res, err := backfill.Run(ctx, j, backfill.Options{DB: src})
		close(stop)
		changefeedtest.Must(t, err)
		changefeedtest.Must(t, <-done)
		t.Logf("backfill %+v", res)

		type product struct {
			ID         string
			Name       string
			PriceCents int64
		}
		changefeedtest.Eventually(t, 2*time.Minute, func() (bool, string) {
			var want, got []product
			changefeedtest.Must(t, src.Raw("SELECT CAST(id AS TEXT) AS id, title AS name, price_cents FROM products ORDER BY id").Scan(&want).Error)
			changefeedtest.Must(t, dst.Raw("SELECT id, name, price_cents FROM catalog").Scan(&got).Error)
			g := map[string]product{}
			for _, p := range got {
				g[p.ID] = p
			}
			for _, w := range want {
				if g[w.ID] != w {
					return false, fmt.Sprintf("product %s: copy %+v, source %+v (%d copies)", w.ID, g[w.ID], w, len(got))
				}
			}
			return len(got) == len(want), fmt.Sprintf("%d copies of %d", len(got), len(want))
		})
	})
}

func TestJobValidate(t *testing.T) {
	tests := []struct {
		name string
		job  backfill.Job
		want string
	}{
		{"ok", backfill.Job{Name: "a", Table: "public.products"}, ""},
		{"no name", backfill.Job{Table: "t"}, "name:"},
		{"injection in table", backfill.Job{Name: "a", Table: "t; DROP TABLE x"}, "table:"},
		{"bad key", backfill.Job{Name: "a", Table: "t", Key: "id)"}, "key:"},
		{"bad column", backfill.Job{Name: "a", Table: "t", Columns: []string{"a b"}}, "columns[0]:"},
		{"bad aggregate type", backfill.Job{Name: "a", Table: "t", AggregateType: "a b"}, "aggregate_type"},
		{"chunk", backfill.Job{Name: "a", Table: "t", ChunkSize: -1}, "chunk_size:"},
		{"dsn", backfill.Job{Name: "a", Table: "t", DSN: "mysql://x"}, "dsn:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := tt.job
			j.SetDefaults()
			err := j.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if j.AggregateType != "products" || j.EventType != "products.snapshot" || j.Key != "id" {
					t.Fatalf("defaults %+v", j)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestBackfillIDsAreVerifyKeys backfills tables keyed by floats, booleans,
// times and text, and checks that each row's aggregate id is the key verify
// reports for the same row: a consumer's replica keyed by aggregate id
// must verify against its source. Backfill named a row as the database
// renders its key (SQLite's 1.0, Postgres' 1e+21) and verify as Go does
// (1, 1000000000000000000000), so every such row showed as missing.
func TestBackfillIDsAreVerifyKeys(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tables := []struct {
		name           string
		sqlite, pgType string
		keys           []any
	}{
		{name: "floats", sqlite: "REAL", pgType: "DOUBLE PRECISION", keys: []any{1.0, 2.5, 1e21, 1e-7, -3.0}},
		{name: "flags", sqlite: "BOOLEAN", pgType: "BOOLEAN", keys: []any{true, false}},
		{name: "times", sqlite: "TIMESTAMP", pgType: "TIMESTAMPTZ", keys: []any{at("2024-01-02T03:04:05Z"), at("2024-06-30T23:59:59.5Z")}},
		{name: "words", sqlite: "TEXT", pgType: "TEXT", keys: []any{"a", "b c", "10"}},
	}
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		pg := db.DialectOf(gdb) == db.Postgres
		for _, tb := range tables {
			t.Run(tb.name, func(t *testing.T) {
				typ := tb.sqlite
				if pg {
					typ = tb.pgType
				}
				for _, table := range []string{tb.name, tb.name + "_replica"} {
					changefeedtest.Must(t, gdb.Exec("CREATE TABLE "+table+" (k "+typ+" PRIMARY KEY, v TEXT NOT NULL)").Error)
				}
				for i, k := range tb.keys {
					changefeedtest.Must(t, gdb.Exec("INSERT INTO "+tb.name+" (k, v) VALUES (?, ?)", k, fmt.Sprint(i)).Error)
				}
				j := backfill.Job{Name: tb.name, Table: tb.name, Key: "k", AggregateType: tb.name}
				res, err := backfill.Run(context.Background(), j, backfill.Options{DB: gdb})
				changefeedtest.Must(t, err)
				if res.Events != int64(len(tb.keys)) {
					t.Fatalf("backfill wrote %d events, want %d", res.Events, len(tb.keys))
				}
				var ids []string
				changefeedtest.Must(t, gdb.Raw("SELECT aggregateid FROM outbox WHERE aggregatetype = ?", tb.name).Scan(&ids).Error)

				rep, err := verify.Compare(context.Background(),
					verify.Side{DB: gdb, Table: tb.name, Key: "k"}, verify.Side{DB: gdb, Table: tb.name + "_replica", Key: "k"},
					verify.Mapping{}, verify.Options{Limit: 100})
				changefeedtest.Must(t, err)
				sort.Strings(ids)
				missing := append([]string(nil), rep.Missing...)
				sort.Strings(missing)
				if !slices.Equal(ids, missing) {
					t.Fatalf("aggregate ids %q, verify keys of the same rows %q", ids, missing)
				}
			})
		}
	})
}
