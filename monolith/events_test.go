package monolith_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/payments"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// outboxRow is one row of the shop's outbox as the relay would read it,
// plus, on Postgres, the id of the transaction that wrote it.
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
	Xmin          string
}

// outboxAfter returns the outbox rows above seq, in seq order.
func outboxAfter(t *testing.T, gdb *gorm.DB, seq int64) []outboxRow {
	t.Helper()
	xmin := "'' AS xmin"
	if db.DialectOf(gdb) == db.Postgres {
		xmin = "xmin::text AS xmin"
	}
	var rows []outboxRow
	err := gdb.Raw("SELECT seq, id, source, aggregatetype, aggregateid, type, schema_version, occurred_at, traceparent, origin, payload, "+
		xmin+" FROM outbox WHERE seq > ? ORDER BY seq", seq).Scan(&rows).Error
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return rows
}

// maxSeq is the outbox's highest sequence number, 0 when it is empty.
func maxSeq(t *testing.T, gdb *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := gdb.Raw("SELECT COALESCE(MAX(seq), 0) FROM outbox").Scan(&n).Error; err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return n
}

// aggregateXmin names, per aggregate type, the query for the id of the
// transaction that last wrote the aggregate's row (Postgres only). An event
// written in the same transaction as its state change has the same one.
var aggregateXmin = map[string]string{
	"product":  "SELECT xmin::text FROM catalog_products WHERE 'P-' || LPAD(id::text, 6, '0') = ?",
	"customer": "SELECT xmin::text FROM customers WHERE id::text = ?",
	"order":    "SELECT xmin::text FROM orders WHERE id::text = ?",
	"stock":    "SELECT xmin::text FROM inv_stock WHERE stock_key = ?",
	"payment":  "SELECT xmin::text FROM pay_authorizations WHERE id::text = ?",
}

// wantEvent is an event a write must produce. Fields are payload values by
// dotted path ("lines.0.warehouse"), as the JSON text of the value.
type wantEvent struct {
	typ, aggregate, key, module string
	fields                      map[string]string
}

// fixture is what the cases create and later cases refer to.
type fixture struct {
	productID  int64
	productRef string
	customerID int64
	orderID    int64
	paymentID  int64
}

func (f *fixture) stockKey() string { return f.productRef + "/AMS1" }

// TestShopEvents checks, on both engines, that each write through the shop's
// HTTP API writes exactly its domain events into the outbox, in the
// transaction of the state change, and that a write that fails writes none.
func TestShopEvents(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn)
		f := &fixture{}
		cases := []struct {
			name   string
			do     func(s *shoptest.Shop) *shoptest.Response
			status int
			// then reads what the case created into the fixture.
			then func(r *shoptest.Response)
			want func() []wantEvent
		}{
			{
				name: "create product",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/catalog/products", map[string]any{"sku": "EVT-1", "name": "Event mug", "price_cents": 1250, "currency": "EUR"})
				},
				status: http.StatusCreated,
				then: func(r *shoptest.Response) {
					var p catalog.Product
					r.Decode(&p)
					f.productID, f.productRef = p.ID, p.Ref
				},
				want: func() []wantEvent {
					return []wantEvent{{"product.created", "product", f.productRef, "catalog", map[string]string{
						"sku": `"EVT-1"`, "name": `"Event mug"`, "price_cents": "1250", "currency": `"EUR"`, "active": "true", "version": "1",
						"product_ref": strconv.Quote(f.productRef), "id": strconv.FormatInt(f.productID, 10),
					}}}
				},
			},
			{
				name: "update product",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Patch(fmt.Sprintf("/api/catalog/products/%d", f.productID), map[string]any{"price_cents": 1500})
				},
				status: http.StatusOK,
				want: func() []wantEvent {
					return []wantEvent{{"product.changed", "product", f.productRef, "catalog", map[string]string{
						"sku": `"EVT-1"`, "price_cents": "1500", "version": "2",
					}}}
				},
			},
			{
				name: "duplicate SKU",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/catalog/products", map[string]any{"sku": "evt-1", "name": "Copy", "price_cents": 100, "currency": "EUR"})
				},
				status: http.StatusConflict,
			},
			{
				name: "invalid product",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/catalog/products", map[string]any{"sku": "EVT-2", "name": "Bad", "price_cents": -1, "currency": "EUR"})
				},
				status: http.StatusUnprocessableEntity,
			},
			{
				name: "adjust stock",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/inventory/stock/"+f.productRef+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": 5, "reason": "delivery"})
				},
				status: http.StatusOK,
				want: func() []wantEvent {
					return []wantEvent{{"stock.adjusted", "stock", f.stockKey(), "inventory", map[string]string{
						"product_ref": strconv.Quote(f.productRef), "warehouse": `"AMS1"`, "on_hand": "5", "reserved": "0", "qty_available": "5",
						"version": "1", "movement.kind": `"adjust"`, "movement.quantity": "5", "movement.reference": `"delivery"`,
					}}}
				},
			},
			{
				name: "adjust stock below zero",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/inventory/stock/"+f.productRef+"/adjustments", map[string]any{"warehouse": "AMS1", "delta": -50, "reason": "count"})
				},
				status: http.StatusConflict,
			},
			{
				name: "create customer",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/customers", map[string]any{"email": "ada@example.com", "name": "Ada",
						"address": map[string]any{"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"}})
				},
				status: http.StatusCreated,
				then: func(r *shoptest.Response) {
					var c customers.Customer
					r.Decode(&c)
					f.customerID = c.ID
				},
				want: func() []wantEvent {
					return []wantEvent{{"customer.created", "customer", strconv.FormatInt(f.customerID, 10), "customers", map[string]string{
						"email": `"ada@example.com"`, "name": `"Ada"`, "address.city": `"Amsterdam"`, "version": "1",
					}}}
				},
			},
			{
				name: "invalid customer",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/customers", map[string]any{"email": "not-an-email", "name": "Bad"})
				},
				status: http.StatusUnprocessableEntity,
			},
			{
				name: "update customer",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Patch(fmt.Sprintf("/api/customers/%d", f.customerID), map[string]any{"name": "Ada Lovelace"})
				},
				status: http.StatusOK,
				want: func() []wantEvent {
					return []wantEvent{{"customer.changed", "customer", strconv.FormatInt(f.customerID, 10), "customers", map[string]string{
						"id": strconv.FormatInt(f.customerID, 10), "name": `"Ada Lovelace"`, "email": `"ada@example.com"`, "version": "2",
					}}}
				},
			},
			{
				name: "place order",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/orders", map[string]any{"customer_id": f.customerID, "lines": []map[string]any{{"sku": "EVT-1", "quantity": 2}}})
				},
				status: http.StatusCreated,
				then: func(r *shoptest.Response) {
					var o orders.Order
					r.Decode(&o)
					f.orderID = o.ID
				},
				want: func() []wantEvent {
					id := strconv.FormatInt(f.orderID, 10)
					return []wantEvent{
						{"stock.reserved", "stock", f.stockKey(), "inventory", map[string]string{
							"on_hand": "5", "reserved": "2", "qty_available": "3", "version": "2",
							"movement.kind": `"reserve"`, "movement.quantity": "2", "movement.reference": strconv.Quote("order/" + id),
						}},
						{"order.placed", "order", id, "orders", map[string]string{
							"id": id, "customer_id": strconv.FormatInt(f.customerID, 10), "customer_email": `"ada@example.com"`,
							"status": "10", "total_cents": "3000", "currency": `"EUR"`, "version": "1",
							"lines.0.sku": `"EVT-1"`, "lines.0.quantity": "2", "lines.0.warehouse": `"AMS1"`, "lines.0.product_ref": strconv.Quote(f.productRef),
						}},
					}
				},
			},
			{
				// The order row is inserted before the reservation fails: the
				// rollback takes it and any event with it.
				name: "order out of stock",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/orders", map[string]any{"customer_id": f.customerID, "lines": []map[string]any{{"sku": "EVT-1", "quantity": 10}}})
				},
				status: http.StatusConflict,
			},
			{
				name: "invalid order",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/orders", map[string]any{"customer_id": f.customerID, "lines": []map[string]any{{"sku": "EVT-1", "quantity": 0}}})
				},
				status: http.StatusUnprocessableEntity,
			},
			{
				name: "cancel order",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post(fmt.Sprintf("/api/orders/%d/cancel", f.orderID), nil)
				},
				status: http.StatusOK,
				want: func() []wantEvent {
					id := strconv.FormatInt(f.orderID, 10)
					return []wantEvent{
						{"stock.released", "stock", f.stockKey(), "inventory", map[string]string{
							"on_hand": "5", "reserved": "0", "qty_available": "5", "version": "3",
							"movement.kind": `"release"`, "movement.quantity": "2", "movement.reference": strconv.Quote("order/" + id),
						}},
						{"order.cancelled", "order", id, "orders", map[string]string{"id": id, "status": "90", "version": "2", "total_cents": "3000"}},
					}
				},
			},
			{
				name: "cancel cancelled order",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post(fmt.Sprintf("/api/orders/%d/cancel", f.orderID), nil)
				},
				status: http.StatusConflict,
			},
			{
				name: "authorize payment",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/payments/authorizations", map[string]any{"customer_id": f.customerID, "amount_cents": 2500, "idempotency_key": "evt/1"})
				},
				status: http.StatusCreated,
				then: func(r *shoptest.Response) {
					var a payments.Authorization
					r.Decode(&a)
					f.paymentID = a.ID
				},
				want: func() []wantEvent {
					return []wantEvent{{"payment.authorized", "payment", strconv.FormatInt(f.paymentID, 10), "payments", map[string]string{
						"idempotency_key": `"evt/1"`, "customer_id": strconv.FormatInt(f.customerID, 10), "amount_cents": "2500",
						"status": `"authorized"`, "version": "1", "voided_at": "null",
					}}}
				},
			},
			{
				name: "repeat authorization",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/payments/authorizations", map[string]any{"customer_id": f.customerID, "amount_cents": 2500, "idempotency_key": "evt/1"})
				},
				status: http.StatusCreated,
			},
			{
				name: "decline payment",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/payments/authorizations", map[string]any{"customer_id": f.customerID, "amount_cents": 10_000_000, "idempotency_key": "evt/2"})
				},
				status: http.StatusUnprocessableEntity,
				want: func() []wantEvent {
					return []wantEvent{{"payment.declined", "payment", strconv.FormatInt(f.paymentID+1, 10), "payments", map[string]string{
						"idempotency_key": `"evt/2"`, "amount_cents": "10000000", "status": `"declined"`, "authorized_at": "null", "version": "1",
					}}}
				},
			},
			{
				name: "capture payment",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post(fmt.Sprintf("/api/payments/authorizations/%d/capture", f.paymentID), nil)
				},
				status: http.StatusOK,
				want: func() []wantEvent {
					return []wantEvent{{"payment.captured", "payment", strconv.FormatInt(f.paymentID, 10), "payments", map[string]string{
						"status": `"captured"`, "version": "2",
					}}}
				},
			},
			{
				name: "void captured payment",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post(fmt.Sprintf("/api/payments/authorizations/%d/void", f.paymentID), nil)
				},
				status: http.StatusConflict,
			},
			{
				name: "void never authorized",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Post("/api/payments/voids", map[string]any{"idempotency_key": "evt/3"})
				},
				status: http.StatusOK,
				want: func() []wantEvent {
					return []wantEvent{{"payment.voided", "payment", strconv.FormatInt(f.paymentID+2, 10), "payments", map[string]string{
						"idempotency_key": `"evt/3"`, "customer_id": "null", "amount_cents": "0", "status": `"voided"`, "authorized_at": "null",
					}}}
				},
			},
			{
				name: "delete customer",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Delete(fmt.Sprintf("/api/customers/%d", f.customerID))
				},
				status: http.StatusNoContent,
				want: func() []wantEvent {
					id := strconv.FormatInt(f.customerID, 10)
					return []wantEvent{{"customer.deleted", "customer", id, "customers", map[string]string{"id": id}}}
				},
			},
			{
				name: "delete deleted customer",
				do: func(s *shoptest.Shop) *shoptest.Response {
					return s.Delete(fmt.Sprintf("/api/customers/%d", f.customerID))
				},
				status: http.StatusNotFound,
			},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := shop.With(t)
				before := maxSeq(t, s.DB())
				start := time.Now()
				r := c.do(s).Expect(c.status)
				if c.then != nil {
					c.then(r)
				}
				var want []wantEvent
				if c.want != nil {
					want = c.want()
				}
				got := outboxAfter(t, s.DB(), before)
				if len(got) != len(want) {
					t.Fatalf("%d events written, want %d: %+v", len(got), len(want), got)
				}
				for i, w := range want {
					checkEvent(t, s.DB(), got[i], w, start)
				}
			})
		}
	})
}

// checkEvent compares an outbox row with the event wanted, and on Postgres
// checks that the row was written by the transaction that last wrote the
// aggregate's own row.
func checkEvent(t *testing.T, gdb *gorm.DB, got outboxRow, w wantEvent, start time.Time) {
	t.Helper()
	if got.Type != w.typ || got.Aggregatetype != w.aggregate || got.Aggregateid != w.key ||
		got.Source != "monolith."+w.module || got.Origin != "monolith" || got.SchemaVersion != 1 {
		t.Errorf("event %d: %s %s/%s source %s origin %s v%d, want %s %s/%s source monolith.%s origin monolith v1",
			got.Seq, got.Type, got.Aggregatetype, got.Aggregateid, got.Source, got.Origin, got.SchemaVersion, w.typ, w.aggregate, w.key, w.module)
	}
	if id, err := uuid.Parse(got.ID); err != nil || id.Version() != 7 {
		t.Errorf("event %d: id %q is not a UUIDv7", got.Seq, got.ID)
	}
	if got.OccurredAt.Before(start.Add(-time.Second)) || got.OccurredAt.After(time.Now().Add(time.Second)) {
		t.Errorf("event %d: occurred_at %s is outside the request (started %s)", got.Seq, got.OccurredAt, start)
	}
	if !strings.HasPrefix(got.Traceparent, "00-") || len(got.Traceparent) != 55 {
		t.Errorf("event %d: traceparent %q", got.Seq, got.Traceparent)
	}
	fields := flatten(t, got.Payload)
	for path, want := range w.fields {
		if fields[path] != want {
			t.Errorf("%s %d: payload %s = %s, want %s; payload %s", got.Type, got.Seq, path, fields[path], want, got.Payload)
		}
	}
	if db.DialectOf(gdb) != db.Postgres {
		return
	}
	var xmin []string
	if err := gdb.Raw(aggregateXmin[w.aggregate], w.key).Pluck("xmin", &xmin).Error; err != nil {
		t.Fatalf("xmin of %s %s: %v", w.aggregate, w.key, err)
	}
	// A deleted aggregate has no row left to compare with.
	if len(xmin) == 1 && xmin[0] != got.Xmin {
		t.Errorf("%s %d written by transaction %s, the %s row by %s: not one transaction", got.Type, got.Seq, got.Xmin, w.aggregate, xmin[0])
	}
}

// flatten returns the JSON text of every value in payload by dotted path.
func flatten(t *testing.T, payload string) map[string]string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		join := func(k string) string {
			if prefix == "" {
				return k
			}
			return prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(join(k), e)
			}
		case []any:
			for i, e := range x {
				walk(join(strconv.Itoa(i)), e)
			}
		default:
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(x); err != nil {
				t.Fatal(err)
			}
			out[prefix] = strings.TrimSpace(buf.String())
		}
	}
	walk("", v)
	return out
}
