package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

type outboxRow struct {
	Seq           int64
	ID            string
	Source        string
	Aggregatetype string
	Aggregateid   string
	Type          string
	SchemaVersion int
	OccurredAt    time.Time
	Traceparent   string
	Origin        string
	Payload       string
}

func TestAdd(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		ctx := changefeed.WithTraceParent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		fixedID := uuid.MustParse("01929f2e-7f3a-7cc0-9a4b-0c1d2e3f4a5b")
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		w := outbox.Writer{Source: "monolith.catalog"}
		err := db.Transact(ctx, gdb, func(ctx context.Context) error {
			a, _ := changefeed.NewEvent("product", "p-1", "product.created", map[string]any{"name": "Mug"})
			b := changefeed.Event{ID: fixedID, AggregateType: "product", AggregateID: "p-1", Type: "product.changed",
				SchemaVersion: 2, OccurredAt: at, Source: "elsewhere", Origin: "catalog-svc", Payload: []byte(`{"name":"Cup"}`)}
			return w.AddContext(ctx, gdb, a, b)
		})
		changefeedtest.Must(t, err)

		var rows []outboxRow
		changefeedtest.Must(t, gdb.Raw("SELECT seq, id, source, aggregatetype, aggregateid, type, schema_version, occurred_at, traceparent, origin, payload FROM outbox ORDER BY seq").Scan(&rows).Error)
		if len(rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rows))
		}
		a, b := rows[0], rows[1]
		if b.Seq <= a.Seq {
			t.Errorf("seq %d then %d: want the order of Add", a.Seq, b.Seq)
		}
		id, err := uuid.Parse(a.ID)
		if err != nil || id.Version() != 7 {
			t.Errorf("generated id %q is not a UUIDv7", a.ID)
		}
		if a.Source != "monolith.catalog" || a.Origin != "monolith.catalog" || a.SchemaVersion != 1 || a.OccurredAt.IsZero() {
			t.Errorf("defaults not filled: %+v", a)
		}
		if a.Traceparent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
			t.Errorf("traceparent %q, want the context's", a.Traceparent)
		}
		if b.ID != fixedID.String() || b.Source != "elsewhere" || b.Origin != "catalog-svc" || b.SchemaVersion != 2 || !b.OccurredAt.Equal(at) {
			t.Errorf("given fields not kept: %+v", b)
		}
		if !strings.Contains(a.Payload, `"name"`) || !strings.Contains(a.Payload, `"Mug"`) {
			t.Errorf("payload %s", a.Payload)
		}

		// Without a trace in the context, the events of one call share a
		// new trace.
		err = db.Transact(context.Background(), gdb, func(ctx context.Context) error {
			x, _ := changefeed.NewEvent("product", "p-2", "product.created", 1)
			y, _ := changefeed.NewEvent("product", "p-3", "product.created", 2)
			return w.AddContext(ctx, gdb, x, y)
		})
		changefeedtest.Must(t, err)
		var traces []string
		changefeedtest.Must(t, gdb.Raw("SELECT DISTINCT traceparent FROM outbox WHERE aggregateid IN ('p-2', 'p-3')").Pluck("traceparent", &traces).Error)
		if len(traces) != 1 {
			t.Fatalf("traces %v, want one shared", traces)
		}
		if _, err := changefeed.ParseTraceParent(traces[0]); err != nil {
			t.Fatalf("generated traceparent %q: %v", traces[0], err)
		}
	})
}

func TestAddRefuses(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		good, _ := changefeed.NewEvent("product", "p-1", "product.created", 1)
		good.Source = "s"

		// Outside a transaction, nothing is written.
		if err := outbox.Add(gdb, good); !errors.Is(err, outbox.ErrNoTransaction) {
			t.Fatalf("Add without a transaction = %v", err)
		}
		if err := outbox.AddContext(context.Background(), gdb, good); !errors.Is(err, outbox.ErrNoTransaction) {
			t.Fatalf("AddContext without a transaction = %v", err)
		}

		// One bad event refuses the whole call, and says which.
		bad := good
		bad.AggregateType = ""
		err := db.Transact(context.Background(), gdb, func(ctx context.Context) error {
			return outbox.AddContext(ctx, gdb, good, bad)
		})
		if !errors.Is(err, changefeed.ErrInvalidEvent) || !strings.Contains(err.Error(), "event 1") {
			t.Fatalf("Add with an invalid event = %v", err)
		}

		// A rolled-back transaction leaves no event.
		err = db.Transact(context.Background(), gdb, func(ctx context.Context) error {
			if err := outbox.AddContext(ctx, gdb, good); err != nil {
				return err
			}
			return errors.New("the state change failed")
		})
		if err == nil {
			t.Fatal("expected the transaction's error")
		}
		var n int64
		changefeedtest.Must(t, gdb.Raw("SELECT COUNT(*) FROM outbox").Scan(&n).Error)
		if n != 0 {
			t.Fatalf("outbox holds %d rows, want 0", n)
		}
	})
}

func TestAddMany(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		events := make([]changefeed.Event, 2500)
		for i := range events {
			events[i], _ = changefeed.NewEvent("item", "k", "item.changed", i)
			events[i].Source = "s"
		}
		changefeedtest.Must(t, db.Transact(context.Background(), gdb, func(ctx context.Context) error {
			return outbox.AddContext(ctx, gdb, events...)
		}))
		var payloads []string
		changefeedtest.Must(t, gdb.Raw("SELECT payload FROM outbox ORDER BY seq").Pluck("payload", &payloads).Error)
		if len(payloads) != 2500 || payloads[0] != "0" || payloads[2499] != "2499" {
			t.Fatalf("%d rows, first %q last %q", len(payloads), payloads[0], payloads[len(payloads)-1])
		}
	})
}

// TestSchema migrates the outbox into a schema of its own (a search_path in
// the DSN), as a service that shares a database would, and inserts from a
// connection whose search_path does not name it.
func TestSchema(t *testing.T) {
	base := dbtest.PostgresDSN(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	gdb := changefeedtest.Open(t, base+sep+"search_path=svc_outbox", outbox.Migrations())
	ev, _ := changefeed.NewEvent("product", "p-1", "product.created", 1)
	ev.Source = "s"
	changefeedtest.Must(t, db.Transact(context.Background(), gdb, func(ctx context.Context) error {
		return outbox.AddContext(ctx, gdb, ev)
	}))
	other := changefeedtest.Open(t, base)
	changefeedtest.Must(t, other.Exec(`INSERT INTO svc_outbox.outbox (id, source, aggregatetype, aggregateid, type, occurred_at, payload)
		VALUES ('01929f2e-7f3a-7cc0-9a4b-0c1d2e3f4a5b', 's', 'product', 'p-2', 'product.created', now(), '1')`).Error)
	var seqs []int64
	changefeedtest.Must(t, other.Raw("SELECT seq FROM svc_outbox.outbox ORDER BY seq").Pluck("seq", &seqs).Error)
	if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
		t.Fatalf("seqs %v, want [1 2]", seqs)
	}
}

// TestQueue queues events from two writers in one transaction and checks
// that the commit writes them all, in the order queued, with each writer's
// defaults; that a rollback writes none; and that an invalid event or a
// missing transaction fails at Queue.
func TestQueue(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
		ctx := context.Background()
		orders, stock := outbox.Writer{Source: "monolith.orders", Origin: "monolith"}, outbox.Writer{Source: "monolith.inventory"}
		ev := func(id, typ string) changefeed.Event {
			e, err := changefeed.NewEvent("thing", id, typ, map[string]string{"id": id})
			changefeedtest.Must(t, err)
			return e
		}
		types := func() []string {
			var out []string
			changefeedtest.Must(t, gdb.Raw("SELECT type || ' ' || source || ' ' || origin FROM outbox ORDER BY seq").Scan(&out).Error)
			return out
		}
		boom := errors.New("boom")
		err := db.Transact(ctx, gdb, func(ctx context.Context) error {
			if err := stock.Queue(ctx, ev("a", "stock.reserved"), ev("b", "stock.reserved")); err != nil {
				return err
			}
			var n int64
			if err := db.Conn(ctx, gdb).Raw("SELECT COUNT(*) FROM outbox").Scan(&n).Error; err != nil || n != 0 {
				t.Errorf("before the commit: %d rows (%v), want none yet", n, err)
			}
			return orders.Queue(ctx, ev("1", "order.placed"))
		})
		changefeedtest.Must(t, err)
		want := []string{"stock.reserved monolith.inventory monolith.inventory", "stock.reserved monolith.inventory monolith.inventory", "order.placed monolith.orders monolith"}
		if got := types(); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("outbox after commit: %q, want %q", got, want)
		}

		for _, tc := range []struct {
			name string
			fn   func(ctx context.Context) error
			want error
		}{
			{"rollback", func(ctx context.Context) error {
				if err := orders.Queue(ctx, ev("2", "order.placed")); err != nil {
					return err
				}
				return boom
			}, boom},
			{"invalid event", func(ctx context.Context) error {
				return orders.Queue(ctx, changefeed.Event{AggregateType: "thing", Type: "order.placed", Payload: []byte(`{}`)})
			}, changefeed.ErrInvalidEvent},
		} {
			if err := db.Transact(ctx, gdb, tc.fn); !errors.Is(err, tc.want) {
				t.Errorf("%s: Transact = %v, want %v", tc.name, err, tc.want)
			}
		}
		if err := orders.Queue(ctx, ev("3", "order.placed")); !errors.Is(err, outbox.ErrNoTransaction) {
			t.Errorf("Queue outside a transaction = %v, want ErrNoTransaction", err)
		}
		if got := types(); len(got) != 3 {
			t.Errorf("outbox after the failures: %q, want the 3 committed events only", got)
		}
	})
}
