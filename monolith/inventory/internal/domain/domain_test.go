package domain_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/inventory/internal/domain"
)

func invalidFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var p *httpx.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("error %v is not a 422 problem", err)
	}
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func TestMoveValidate(t *testing.T) {
	tests := []struct {
		name              string
		in                domain.Move
		warehouseRequired bool
		want              []string
	}{
		{"reserve anywhere", domain.Move{Quantity: 1}, false, nil},
		{"release needs a warehouse", domain.Move{Quantity: 1}, true, []string{"warehouse"}},
		{"lower-case warehouse", domain.Move{Warehouse: " ams1 ", Quantity: 1}, true, nil},
		{"malformed warehouse", domain.Move{Warehouse: "AMS", Quantity: 1}, false, []string{"warehouse"}},
		{"digit first", domain.Move{Warehouse: "1AMS", Quantity: 1}, false, []string{"warehouse"}},
		{"zero", domain.Move{Quantity: 0}, false, []string{"quantity"}},
		{"negative", domain.Move{Quantity: -1}, false, []string{"quantity"}},
		{"too many", domain.Move{Quantity: domain.MaxQuantity + 1}, false, []string{"quantity"}},
		{"long reference", domain.Move{Quantity: 1, Reference: string(make([]byte, domain.MaxReasonLen+1))}, false, []string{"reference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if got := invalidFields(t, in.Validate(tt.warehouseRequired)); !slices.Equal(got, tt.want) {
				t.Fatalf("invalid fields %v, want %v", got, tt.want)
			}
			if tt.name == "lower-case warehouse" && in.Warehouse != "AMS1" {
				t.Fatalf("warehouse not normalised: %q", in.Warehouse)
			}
		})
	}
}

func TestAdjustmentValidate(t *testing.T) {
	tests := []struct {
		in   domain.Adjustment
		want []string
	}{
		{domain.Adjustment{Warehouse: "BER1", Delta: -5}, nil},
		{domain.Adjustment{Warehouse: "BER1"}, []string{"delta"}},
		{domain.Adjustment{Delta: 1}, []string{"warehouse"}},
		{domain.Adjustment{Warehouse: "BER1", Delta: -domain.MaxQuantity - 1}, []string{"delta"}},
	}
	for _, tt := range tests {
		in := tt.in
		if got := invalidFields(t, in.Validate()); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: invalid fields %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCheckRefAndQuery(t *testing.T) {
	if err := domain.CheckRef("P-000042"); err != nil {
		t.Fatal(err)
	}
	var p *httpx.Problem
	if err := domain.CheckRef("42"); !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Fatalf("CheckRef(42) = %v, want a 400", err)
	}
	q := domain.Query{Warehouse: "mad1"}
	if err := q.Validate(); err != nil || q.Warehouse != "MAD1" {
		t.Fatalf("Query %+v, %v", q, err)
	}
	q = domain.Query{Warehouse: "Madrid"}
	if err := q.Validate(); !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Fatalf("Query with a bad warehouse = %v, want a 400", err)
	}
}
