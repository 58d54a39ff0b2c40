package orders_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// shape describes a JSON value by its kinds: objects by their keys'
// shapes, arrays by the shapes of their elements (deduplicated), scalars
// by their kind.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shape(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		var parts []string
		for _, e := range x {
			if s := shape(e); !slices.Contains(parts, s) {
				parts = append(parts, s)
			}
		}
		return "[" + strings.Join(parts, "|") + "]"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", x)
	}
}

func shapeOf(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return shape(v)
}

// outboxEvent is one of the shop's events as its outbox holds it.
type outboxEvent struct {
	Type, Source, Aggregatetype, Aggregateid, Origin, Payload string
	SchemaVersion                                             int
}

// TestGoldenPayloadsMatchMonolith drives the real monolith through an
// order's life, a customer's and a product's, and checks that every golden
// legacy payload in testdata/ has the shape (keys and JSON kinds) of what
// the monolith actually sends, its HTTP JSON and its events' envelopes and
// payloads, and that the ACL reads the real ones.
func TestGoldenPayloadsMatchMonolith(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		line := func(sku string, q int) map[string]any { return map[string]any{"sku": sku, "quantity": q} }
		var o1, o2 aclorders.LegacyOrder
		shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{line("COF-ETH-250", 2), line("COF-COL-250", 1)}}).Expect(http.StatusCreated).Decode(&o1)
		shop.Post(fmt.Sprintf("/api/orders/%d/pay", o1.ID), nil).Expect(http.StatusOK)
		paidJSON := shop.Get(fmt.Sprintf("/api/orders/%d", o1.ID)).Expect(http.StatusOK).Body
		shop.Post(fmt.Sprintf("/api/orders/%d/ship", o1.ID), nil).Expect(http.StatusOK)
		shop.Post("/api/orders", map[string]any{"customer_id": 1, "lines": []any{line("COF-ETH-250", 1)}}).Expect(http.StatusCreated).Decode(&o2)
		shop.Post(fmt.Sprintf("/api/orders/%d/cancel", o2.ID), nil).Expect(http.StatusOK)
		pageJSON := shop.Get("/api/orders?limit=1").Expect(http.StatusOK).Body
		created := shop.CreateCustomer("golden@example.com")
		shop.Patch(fmt.Sprintf("/api/customers/%d", created.ID), map[string]any{"email": "golden2@example.com"}).Expect(http.StatusOK)
		shop.Delete(fmt.Sprintf("/api/customers/%d", created.ID)).Expect(http.StatusNoContent)
		shop.Patch("/api/catalog/products/1", map[string]any{"price_cents": 1350}).Expect(http.StatusOK)

		var rows []outboxEvent
		if err := shop.DB().Raw("SELECT type, source, aggregatetype, aggregateid, origin, schema_version, payload FROM outbox ORDER BY seq").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		last := map[string]outboxEvent{}
		for _, r := range rows {
			last[r.Type] = r
		}

		for _, c := range []struct{ golden, real string }{
			{"http/order.json", string(paidJSON)},
			{"http/page.json", string(pageJSON)},
		} {
			if g, r := shapeOf(t, golden(t, c.golden)), shapeOf(t, []byte(c.real)); g != r {
				t.Errorf("%s has the shape\n%s\nthe monolith sends\n%s", c.golden, g, r)
			}
		}
		if o, err := aclorders.DecodeOrder(paidJSON); err != nil || o.State != aclorders.StatePaid || o.ID != o1.ID {
			t.Errorf("the ACL reads the monolith's order as %+v, %v", o, err)
		}
		for _, name := range []string{"order.placed", "order.paid", "order.shipped", "order.cancelled", "customer.created", "customer.changed", "customer.deleted", "product.changed"} {
			r, ok := last[name]
			if !ok {
				t.Errorf("the monolith wrote no %s", name)
				continue
			}
			g := readEvent(t, name+".json")
			if g.Source != r.Source || g.AggregateType != r.Aggregatetype || g.Origin != r.Origin || g.SchemaVersion != r.SchemaVersion {
				t.Errorf("%s: golden envelope %s %s %s v%d, the monolith's %s %s %s v%d", name,
					g.Source, g.AggregateType, g.Origin, g.SchemaVersion, r.Source, r.Aggregatetype, r.Origin, r.SchemaVersion)
			}
			if gs, rs := shapeOf(t, g.Payload), shapeOf(t, []byte(r.Payload)); gs != rs {
				t.Errorf("%s: golden payload has the shape\n%s\nthe monolith's\n%s", name, gs, rs)
			}
			ev := changefeed.Event{Type: r.Type, AggregateType: r.Aggregatetype, AggregateID: r.Aggregateid, Payload: json.RawMessage(r.Payload)}
			var err error
			switch r.Aggregatetype {
			case aclorders.OrderAggregate:
				_, err = aclorders.DecodeOrder(ev.Payload)
			case aclorders.CustomerAggregate:
				_, err = aclorders.DecodeCustomer(ev)
			case aclorders.ProductAggregate:
				_, err = aclorders.DecodePrice(ev)
			}
			if err != nil {
				t.Errorf("the ACL cannot read the monolith's %s: %v", name, err)
			}
		}
	})
}
