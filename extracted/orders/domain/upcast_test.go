package domain_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/internal/goldentest"
)

// TestUpcastV1 upcasts the golden version 1 payloads of order.placed and
// order.imported (testdata/*.v1.json, the shape of the service's first
// release: money as decimal strings in major units, no currency) and
// compares the result with the golden version 2 payloads, and the fold of
// each with the fold of the same order written at version 2.
func TestUpcastV1(t *testing.T) {
	paidAt := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	p := placed()
	p.StockReserved, p.AuthorizationID = true, "auth-1042"
	imported := domain.Imported{Status: domain.StatusPaid, PaidAt: &paidAt, LegacyVersion: 2, Placed: domain.Placed{ID: 17, CustomerID: 7,
		CustomerEmail: "anna@example.nl", Currency: "EUR", TotalCents: 1290, PlacedAt: time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC),
		Lines: []domain.Line{{LineNo: 1, SKU: "COF-ETH-250", ProductRef: "P-000001", ProductName: "Ethiopia", UnitPriceCents: 1290, Quantity: 1, LineTotalCents: 1290, Warehouse: "nl-ams"}}}}
	tests := []struct {
		eventType string
		file      string
		v2        func(domain.Order) ([]eventsource.Event, error)
	}{
		{domain.EventPlaced, "order.placed", func(o domain.Order) ([]eventsource.Event, error) { return o.Place(p) }},
		{domain.EventImported, "order.imported", func(o domain.Order) ([]eventsource.Event, error) { return o.Import(imported) }},
	}
	up := domain.Upcasters()
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			v1, err := os.ReadFile(filepath.Join("testdata", tt.file+".v1.json"))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := up.Upcast(eventsource.Event{Type: tt.eventType, SchemaVersion: 1, Payload: v1, AggregateID: "x", Version: 1, OccurredAt: t0})
			if err != nil {
				t.Fatal(err)
			}
			if ev.SchemaVersion != 2 {
				t.Errorf("upcast to schema version %d, want 2", ev.SchemaVersion)
			}
			var pretty strings.Builder
			enc := json.NewEncoder(&pretty)
			enc.SetIndent("", "  ")
			if err := enc.Encode(json.RawMessage(ev.Payload)); err != nil {
				t.Fatal(err)
			}
			goldentest.Check(t, filepath.Join("testdata", tt.file+".v2.json"), pretty.String())

			evs, err := tt.v2(domain.Order{})
			if err != nil {
				t.Fatal(err)
			}
			want := evs[0]
			if want.SchemaVersion != 2 {
				t.Errorf("the command writes schema version %d, want 2", want.SchemaVersion)
			}
			want.AggregateID, want.Version, want.OccurredAt = "x", 1, t0
			fromV1, err := domain.Apply(domain.Order{}, ev)
			if err != nil {
				t.Fatal(err)
			}
			fromV2, err := domain.Apply(domain.Order{}, want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromV1, fromV2) {
				t.Errorf("fold of v1 %+v\nfold of v2 %+v", fromV1, fromV2)
			}
		})
	}
}

// TestUpcastRefuses: a version 1 payload whose amounts cannot be read
// exactly, an order event of a newer version than this release knows, and
// an event handed to Apply at an old version without the upcasters are
// errors, not guesses.
func TestUpcastRefuses(t *testing.T) {
	v1 := `{"id":1,"customer_id":7,"total":%s,"lines":[{"line_no":1,"sku":"A","unit_price":%s,"quantity":1,"line_total":"1.00"}],"placed_at":"2026-03-04T05:06:07Z"}`
	up := domain.Upcasters()
	tests := []struct {
		name    string
		ev      eventsource.Event
		wantErr string
	}{
		{"three decimals", eventsource.Event{Type: domain.EventPlaced, SchemaVersion: 1, Payload: []byte(strings.NewReplacer("%s", `"1.005"`).Replace(v1))}, "more than two decimals"},
		{"a number, not a string", eventsource.Event{Type: domain.EventPlaced, SchemaVersion: 1, Payload: []byte(strings.NewReplacer("%s", `1.00`).Replace(v1))}, "total is 1.00, not a decimal string"},
		{"no total", eventsource.Event{Type: domain.EventImported, SchemaVersion: 1, Payload: []byte(`{"id":1,"lines":[]}`)}, "total is missing"},
		{"a line without its price", eventsource.Event{Type: domain.EventPlaced, SchemaVersion: 1, Payload: []byte(`{"total":"1.00","lines":[{"line_total":"1.00"}]}`)}, "lines[0]: v1 payload: unit_price is missing"},
		{"order.placed v3", eventsource.Event{Type: domain.EventPlaced, SchemaVersion: 3, Payload: []byte(`{}`)}, "knows versions up to 2 only"},
		{"order.paid v2", eventsource.Event{Type: domain.EventPaid, SchemaVersion: 2, Payload: []byte(`{}`)}, "knows versions up to 1 only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := up.Upcast(tt.ev)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Upcast = %v, want an error with %q", err, tt.wantErr)
			}
			var unknown *eventsource.UnknownVersionError
			if errors.As(err, &unknown) != (tt.ev.SchemaVersion > domain.SchemaVersion(tt.ev.Type)) {
				t.Errorf("Upcast = %v: an UnknownVersionError exactly for a newer version", err)
			}
		})
	}
	v1Placed, err := os.ReadFile(filepath.Join("testdata", "order.placed.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := domain.Apply(domain.Order{}, eventsource.Event{Type: domain.EventPlaced, SchemaVersion: 1, Payload: v1Placed}); err == nil || !strings.Contains(err.Error(), "is at schema version 1, not 2") {
		t.Errorf("Apply of a v1 order.placed not upcast = %v, want an error", err)
	}
}

// TestParseCents reads amounts exactly and refuses what is not one.
func TestParseCents(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"12.90", 1290, ""},
		{"12.9", 1290, ""},
		{"12", 1200, ""},
		{"0.05", 5, ""},
		{"-0.50", -50, ""},
		{"-3", -300, ""},
		{"92233720368547758.07", 9223372036854775807, ""},
		{"92233720368547758.08", 0, "out of range"},
		{"1.005", 0, "more than two decimals"},
		{"", 0, "not an amount"},
		{"12.", 0, "not an amount"},
		{".5", 0, "not an amount"},
		{"1,50", 0, "not an amount"},
		{"+1", 0, "not an amount"},
		{"1.+5", 0, "not an amount"},
		{"--1", 0, "not an amount"},
		{"1e3", 0, "not an amount"},
	}
	for _, tt := range tests {
		got, err := domain.ParseCents(tt.in)
		if tt.err != "" {
			if !errors.Is(err, domain.ErrAmount) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCents(%q) = %d, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
