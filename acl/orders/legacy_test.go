package orders_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/acl/internal/acltest"
	aclorders "github.com/stranglerkit/strangler/acl/orders"
)

func golden(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readEvent and at are the ACLs' shared test helpers.
var (
	readEvent = acltest.Event
	at        = acltest.At
)

func ptr(t time.Time) *time.Time { return &t }

func TestStatusMapping(t *testing.T) {
	pairs := []struct {
		code  int
		state aclorders.State
	}{{10, aclorders.StatePlaced}, {20, aclorders.StatePaid}, {30, aclorders.StateShipped}, {90, aclorders.StateCancelled}}
	for _, p := range pairs {
		got, err := aclorders.StateOf(p.code)
		if err != nil || got != p.state {
			t.Errorf("StateOf(%d) = %q, %v; want %q", p.code, got, err, p.state)
		}
		code, err := aclorders.CodeOf(p.state)
		if err != nil || int(code) != p.code {
			t.Errorf("CodeOf(%q) = %d, %v; want %d", p.state, code, err, p.code)
		}
	}
	if got := len(aclorders.States()); got != len(pairs) {
		t.Errorf("%d states, want %d", got, len(pairs))
	}
	for _, code := range []int{0, -10, 1, 11, 15, 40, 80, 91, 100, 1 << 40} {
		_, err := aclorders.StateOf(code)
		var unknown *aclorders.UnknownStatusError
		if !errors.As(err, &unknown) || unknown.Code != code || !errors.Is(err, aclorders.ErrUnknownStatus) {
			t.Errorf("StateOf(%d): %v, want an *UnknownStatusError", code, err)
		}
	}
	for _, s := range []aclorders.State{"", "refunded", "PLACED", "placed "} {
		_, err := aclorders.CodeOf(s)
		var unknown *aclorders.UnknownStateError
		if !errors.As(err, &unknown) || unknown.State != s || !errors.Is(err, aclorders.ErrUnknownStatus) {
			t.Errorf("CodeOf(%q): %v, want an *UnknownStateError", s, err)
		}
	}
}

// paidOrder is the order of the golden order.paid.json and http/order.json
// in the service's model.
var paidOrder = aclorders.Order{
	ID: 1042, CustomerID: 17, CustomerEmail: "anna.devries@example.nl", State: aclorders.StatePaid, Currency: "EUR",
	Lines: []aclorders.Line{
		{No: 1, SKU: "COF-ETH-250", ProductRef: "P-000001", ProductName: "Ethiopia Yirgacheffe beans 250 g", UnitPriceCents: 1290, Quantity: 2, Warehouse: "AMS1"},
		{No: 2, SKU: "COF-COL-250", ProductRef: "P-000002", ProductName: "Colombia Huila beans 250 g", UnitPriceCents: 1290, Quantity: 1, Warehouse: "BER1"},
	},
	PlacedAt: at("2026-03-04T05:06:07.123456Z"), PaidAt: ptr(at("2026-03-04T05:07:00Z")),
	Version: 2, UpdatedAt: at("2026-03-04T05:07:00Z"),
}

func sameOrder(t *testing.T, got, want aclorders.Order) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("order\n%s\nwant\n%s", g, w)
	}
}

// TestDecodeOrder reads the golden legacy orders: the HTTP JSON, each
// order event, a backfill snapshot from SQLite with numbers as strings,
// driver times and no lines, an unknown status code and a row whose
// redundant totals contradict its lines.
func TestDecodeOrder(t *testing.T) {
	shipped := paidOrder
	shipped.State, shipped.ShippedAt, shipped.Version, shipped.UpdatedAt = aclorders.StateShipped, ptr(at("2026-03-04T05:09:00Z")), 3, at("2026-03-04T05:09:00Z")
	placed := paidOrder
	placed.State, placed.PaidAt, placed.Version, placed.UpdatedAt = aclorders.StatePlaced, nil, 1, placed.PlacedAt
	snapshot := paidOrder
	snapshot.Lines = nil
	cancelled := aclorders.Order{
		ID: 1043, CustomerID: 17, CustomerEmail: "anna.devries@example.nl", State: aclorders.StateCancelled, Currency: "EUR",
		Lines:    []aclorders.Line{{No: 1, SKU: "COF-ETH-250", ProductRef: "P-000001", ProductName: "Ethiopia Yirgacheffe beans 250 g", UnitPriceCents: 1290, Quantity: 1, Warehouse: "AMS1"}},
		PlacedAt: at("2026-03-04T05:06:07Z"), CancelledAt: ptr(at("2026-03-04T05:08:00Z")), Version: 2, UpdatedAt: at("2026-03-04T05:08:00Z"),
	}
	tests := []struct {
		name    string
		payload func(t *testing.T) []byte
		want    aclorders.Order
	}{
		{"http/order.json", func(t *testing.T) []byte { return golden(t, "http/order.json") }, paidOrder},
		{"order.placed.json", func(t *testing.T) []byte { return readEvent(t, "order.placed.json").Payload }, placed},
		{"order.paid.json", func(t *testing.T) []byte { return readEvent(t, "order.paid.json").Payload }, paidOrder},
		{"order.shipped.json", func(t *testing.T) []byte { return readEvent(t, "order.shipped.json").Payload }, shipped},
		{"order.cancelled.json", func(t *testing.T) []byte { return readEvent(t, "order.cancelled.json").Payload }, cancelled},
		{"order.snapshot.sqlite.json", func(t *testing.T) []byte { return readEvent(t, "order.snapshot.sqlite.json").Payload }, snapshot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := aclorders.DecodeOrder(tt.payload(t))
			if err != nil {
				t.Fatal(err)
			}
			sameOrder(t, got, tt.want)
		})
	}
	t.Run("page", func(t *testing.T) {
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(golden(t, "http/page.json"), &page); err != nil || len(page.Items) != 1 {
			t.Fatalf("page: %v, %d items", err, len(page.Items))
		}
		got, err := aclorders.DecodeOrder(page.Items[0])
		if err != nil || got.State != aclorders.StateCancelled {
			t.Fatalf("page item: %+v, %v", got, err)
		}
	})
	t.Run("unknown status", func(t *testing.T) {
		_, err := aclorders.DecodeOrder(readEvent(t, "order.unknown-status.json").Payload)
		var unknown *aclorders.UnknownStatusError
		if !errors.As(err, &unknown) || unknown.Code != 40 {
			t.Fatalf("got %v, want an *UnknownStatusError for 40", err)
		}
	})
	t.Run("inconsistent totals", func(t *testing.T) {
		_, err := aclorders.DecodeOrder(readEvent(t, "order.inconsistent.json").Payload)
		if !errors.Is(err, aclorders.ErrInconsistent) {
			t.Fatalf("got %v, want ErrInconsistent", err)
		}
		for _, want := range []string{"line_total_cents 2500 is not 1290 × 2", "total_cents 9999 is not the sum of the lines, 2580"} {
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	for _, bad := range []string{`{`, `[]`, `{"customer_id":1,"status":10}`, `{"id":1,"status":10}`, `{"id":1,"customer_id":1}`, `{"id":"x","customer_id":1,"status":10}`, `{"id":1,"customer_id":1,"status":10.5}`} {
		if _, err := aclorders.DecodeOrder([]byte(bad)); !errors.Is(err, aclorders.ErrMalformed) {
			t.Errorf("DecodeOrder(%s): %v, want ErrMalformed", bad, err)
		}
	}
}

// TestLegacyRoundTrip translates the golden HTTP order to the service's
// model and back: the legacy JSON comes out as it went in, redundant totals
// derived again.
func TestLegacyRoundTrip(t *testing.T) {
	in := golden(t, "http/order.json")
	o, err := aclorders.DecodeOrder(in)
	if err != nil {
		t.Fatal(err)
	}
	l, err := aclorders.ToLegacy(o)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(l)
	var a, b any
	_ = json.Unmarshal(in, &a)
	_ = json.Unmarshal(out, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("round trip\n%s\nwant\n%s", jb, ja)
	}
	o.State = "refunded"
	if _, err := aclorders.ToLegacy(o); !errors.Is(err, aclorders.ErrUnknownStatus) {
		t.Fatalf("ToLegacy of an unknown state: %v", err)
	}
}
