package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/extracted/orders/store"
)

// placedV1 is the payload of order.placed at schema version 1, as the
// service's first release wrote it: money in major units as decimal
// strings, and no currency (every order was in euros). Its golden form is
// extracted/orders/domain/testdata/order.placed.v1.json.
type placedV1 struct {
	ID              int64     `json:"id"`
	CustomerID      int64     `json:"customer_id"`
	CustomerEmail   string    `json:"customer_email"`
	Total           string    `json:"total"`
	Lines           []lineV1  `json:"lines"`
	PlacedAt        time.Time `json:"placed_at"`
	StockReserved   bool      `json:"stock_reserved,omitempty"`
	AuthorizationID string    `json:"authorization_id,omitempty"`
}

type lineV1 struct {
	LineNo      int    `json:"line_no"`
	SKU         string `json:"sku"`
	ProductRef  string `json:"product_ref"`
	ProductName string `json:"product_name"`
	UnitPrice   string `json:"unit_price"`
	Quantity    int    `json:"quantity"`
	LineTotal   string `json:"line_total"`
	Warehouse   string `json:"warehouse"`
}

// importedV1 is the payload of order.imported at schema version 1.
type importedV1 struct {
	placedV1
	Status        domain.Status `json:"status"`
	PaidAt        *time.Time    `json:"paid_at,omitempty"`
	ShippedAt     *time.Time    `json:"shipped_at,omitempty"`
	CancelledAt   *time.Time    `json:"cancelled_at,omitempty"`
	LegacyVersion int           `json:"legacy_version"`
}

func decimal(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

// v1Of is p as the first release wrote it. p must be in euros.
func v1Of(t *testing.T, p domain.Placed) placedV1 {
	t.Helper()
	if p.Currency != domain.DefaultCurrencyV1 {
		t.Fatalf("order %d in %s: version 1 knew no other currency than %s", p.ID, p.Currency, domain.DefaultCurrencyV1)
	}
	v := placedV1{ID: p.ID, CustomerID: p.CustomerID, CustomerEmail: p.CustomerEmail, Total: decimal(p.TotalCents), PlacedAt: p.PlacedAt,
		StockReserved: p.StockReserved, AuthorizationID: p.AuthorizationID}
	for _, l := range p.Lines {
		v.Lines = append(v.Lines, lineV1{LineNo: l.LineNo, SKU: l.SKU, ProductRef: l.ProductRef, ProductName: l.ProductName,
			UnitPrice: decimal(l.UnitPriceCents), Quantity: l.Quantity, LineTotal: decimal(l.LineTotalCents), Warehouse: l.Warehouse})
	}
	return v
}

// asV1 returns ev as the first release wrote it when it is an order.placed
// or order.imported, else as it is.
func asV1(t *testing.T, ev eventsource.Event) eventsource.Event {
	t.Helper()
	var v any
	switch ev.Type {
	case domain.EventPlaced:
		var p domain.Placed
		mustDecode(t, ev, &p)
		v = v1Of(t, p)
	case domain.EventImported:
		var p domain.Imported
		mustDecode(t, ev, &p)
		v = importedV1{placedV1: v1Of(t, p.Placed), Status: p.Status, PaidAt: p.PaidAt, ShippedAt: p.ShippedAt, CancelledAt: p.CancelledAt, LegacyVersion: p.LegacyVersion}
	default:
		return ev
	}
	payload, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	ev.SchemaVersion, ev.Payload = 1, payload
	return ev
}

func mustDecode(t *testing.T, ev eventsource.Event, v any) {
	t.Helper()
	if err := ev.Decode(v); err != nil {
		t.Fatal(err)
	}
}

// orderStreams returns the streams of n orders as the current release's
// commands write them, each event stamped with its stream, version and a
// fixed time: orders placed and taken through the saga's steps and the
// lifecycle, and orders imported from the monolith in each status.
func orderStreams(t *testing.T, n int) [][]eventsource.Event {
	t.Helper()
	var out [][]eventsource.Event
	for i := range n {
		id := int64(2000 + i)
		p := placed(id, int64(i%3+1), i%3+1)
		var cmds []func(domain.Order) ([]eventsource.Event, error)
		if i%4 == 3 {
			st := domain.Statuses[i/4%len(domain.Statuses)]
			imp := domain.Imported{Placed: p, Status: st, LegacyVersion: 2}
			if st != domain.StatusPlaced {
				at := p.PlacedAt.Add(time.Hour)
				imp.PaidAt = &at
			}
			cmds = append(cmds, func(o domain.Order) ([]eventsource.Event, error) { return o.Import(imp) })
		} else {
			if i%2 == 0 {
				p.StockReserved, p.AuthorizationID = true, fmt.Sprintf("auth-%d", id)
			}
			cmds = append(cmds, func(o domain.Order) ([]eventsource.Event, error) { return o.Place(p) })
		}
		at := p.PlacedAt.Add(2 * time.Hour)
		switch i % 4 {
		case 0:
			cmds = append(cmds, func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(at) },
				func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(at.Add(time.Hour)) })
		case 1:
			cmds = append(cmds, func(o domain.Order) ([]eventsource.Event, error) { return o.ReserveStock() },
				func(o domain.Order) ([]eventsource.Event, error) {
					return o.AuthorizePayment(domain.Authorization{AuthorizationID: "a", AmountCents: o.TotalCents})
				},
				func(o domain.Order) ([]eventsource.Event, error) { return o.ChangeCustomerEmail("moved@example.nl") })
		case 2:
			cmds = append(cmds, func(o domain.Order) ([]eventsource.Event, error) { return o.Cancel("changed my mind", at) })
		}
		var (
			o      domain.Order
			stream []eventsource.Event
		)
		for _, cmd := range cmds {
			evs, err := cmd(o)
			if err != nil {
				t.Fatalf("order %d: %v", id, err)
			}
			for _, ev := range evs {
				ev.AggregateType, ev.AggregateID, ev.Version = domain.AggregateType, domain.AggregateID(id), o.Version+1
				ev.ID, ev.OccurredAt = uuid.Must(uuid.NewV7()), p.PlacedAt.Add(time.Duration(o.Version)*time.Minute)
				if o, err = domain.Apply(o, ev); err != nil {
					t.Fatal(err)
				}
				stream = append(stream, ev)
			}
		}
		out = append(out, stream)
	}
	return out
}

// insertRaw writes ev into es_events with plain SQL, as an older or newer
// release of the service would have stored it.
func insertRaw(t *testing.T, gdb *gorm.DB, ev eventsource.Event) {
	t.Helper()
	err := gdb.Exec("INSERT INTO es_events (id, aggregate_type, aggregate_id, version, type, schema_version, occurred_at, traceparent, payload) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?)",
		ev.ID.String(), ev.AggregateType, ev.AggregateID, ev.Version, ev.Type, ev.SchemaVersion, ev.OccurredAt.UTC(), string(ev.Payload)).Error
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpcastOrderEvents stores the same orders in two databases, as raw
// rows of es_events: in one every event at its current schema version, in
// the other a mix in which a third of the orders' order.placed and
// order.imported are at version 1, as the first release wrote them, and
// the rest at version 2. On both engines each order loads to the same
// state from either store, and the read models, projected and then
// rebuilt from position 0, are the same tables; the version 1 rows stay
// as they were stored. An order.placed at a version newer than this
// release knows is refused by the aggregate and by the projections with
// an *eventsource.UnknownVersionError, and no read model shows it.
func TestUpcastOrderEvents(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		current, mixed := open(t, dsn), open(t, siblingDSN(t, dsn))
		streams := orderStreams(t, 16)
		var ids []int64
		v1Rows := 0
		// Round robin over the streams, so that the orders' events
		// interleave in the store's positions as live ones do.
		for v := 0; ; v++ {
			wrote := false
			for i, s := range streams {
				if v >= len(s) {
					continue
				}
				wrote = true
				ev := s[v]
				insertRaw(t, current, ev)
				if i%3 == 0 {
					if ev = asV1(t, ev); ev.SchemaVersion == 1 && (ev.Type == domain.EventPlaced || ev.Type == domain.EventImported) {
						v1Rows++
					}
				}
				insertRaw(t, mixed, ev)
				if v == 0 {
					ids = append(ids, int64(2000+i))
				}
			}
			if !wrote {
				break
			}
		}
		if v1Rows != 6 {
			t.Fatalf("%d version 1 rows, want 6", v1Rows)
		}

		fromCurrent := newStore(t, current, store.Options{SnapshotEvery: -1})
		fromMixed := newStore(t, mixed, store.Options{SnapshotEvery: -1})
		for _, id := range ids {
			want, err := fromCurrent.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fromMixed.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("order %d:\nfrom v1+v2 %+v\nfrom v2    %+v", id, got, want)
			}
		}

		project := func(gdb *gorm.DB) *eventsource.Runner {
			r, err := orders.NewProjections(gdb, eventsource.RunnerConfig{Batch: 5}, eventsource.RunnerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			if err := r.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			return r
		}
		project(current)
		mixedRunner := project(mixed)
		want := tables(t, current)
		if got := tables(t, mixed); !reflect.DeepEqual(got, want) {
			t.Errorf("read models of v1+v2:\n%v\nof v2:\n%v", got, want)
		}
		rebuildAll(t, mixedRunner)
		if got := tables(t, mixed); !reflect.DeepEqual(got, want) {
			t.Errorf("read models of v1+v2 rebuilt from position 0:\n%v\nof v2:\n%v", got, want)
		}
		if len(want["order_views"]) != len(ids) {
			t.Errorf("order_views holds %d rows, want %d", len(want["order_views"]), len(ids))
		}
		var stillV1 int
		if err := mixed.Raw("SELECT COUNT(*) FROM es_events WHERE schema_version = 1 AND type IN ?", []string{domain.EventPlaced, domain.EventImported}).Scan(&stillV1).Error; err != nil {
			t.Fatal(err)
		}
		if stillV1 != v1Rows {
			t.Errorf("%d version 1 rows after reading, want the %d stored", stillV1, v1Rows)
		}

		// A newer release's order.placed: same shape for all this release
		// can tell, and so all the more likely to be read wrong.
		future := streams[0][0]
		future.ID, future.AggregateID, future.SchemaVersion = uuid.Must(uuid.NewV7()), "9999", 3
		insertRaw(t, mixed, future)
		var unknown *eventsource.UnknownVersionError
		if _, err := fromMixed.Get(ctx, 9999); !errors.As(err, &unknown) || unknown.SchemaVersion != 3 || unknown.Current != 2 {
			t.Errorf("load of an order.placed v3 = %v, want an UnknownVersionError from 3 over 2", err)
		}
		if err := mixedRunner.CatchUp(ctx); !errors.As(err, &unknown) {
			t.Errorf("projecting an order.placed v3 = %v, want an UnknownVersionError", err)
		}
		if _, err := readmodel.Get(ctx, mixed, 9999); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("the read model of the order.placed v3 = %v, want none", err)
		}
	})
}
