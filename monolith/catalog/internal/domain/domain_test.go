package domain_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog/internal/domain"
)

func TestProductRef(t *testing.T) {
	tests := []struct {
		id  int64
		ref string
	}{
		{1, "P-000001"},
		{42, "P-000042"},
		{999999, "P-999999"},
		{1234567, "P-1234567"},
	}
	for _, tt := range tests {
		if got := domain.ProductRef(tt.id); got != tt.ref {
			t.Errorf("ProductRef(%d) = %q, want %q", tt.id, got, tt.ref)
		}
		if id, err := domain.ParseProductRef(tt.ref); err != nil || id != tt.id {
			t.Errorf("ParseProductRef(%q) = %d, %v", tt.ref, id, err)
		}
	}
	for _, bad := range []string{"", "42", "P-42", "P-0000042", "p-000042", "P-000000", "P-00004a", "P--00042", "P-000042 ", "SKU-000042"} {
		if id, err := domain.ParseProductRef(bad); err == nil {
			t.Errorf("ParseProductRef(%q) = %d, want an error", bad, id)
		}
	}
}

// fields returns the invalid fields of a validation problem.
func fields(t *testing.T, err error) []string {
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

func TestNewProductValidate(t *testing.T) {
	long := string(make([]rune, domain.MaxNameLen+1))
	tests := []struct {
		name string
		in   domain.NewProduct
		want []string
	}{
		{"valid", domain.NewProduct{SKU: " ab-1 ", Name: " Mug ", PriceCents: 0, Currency: "eur"}, nil},
		{"empty", domain.NewProduct{}, []string{"sku", "name", "currency"}},
		{"one-character SKU", domain.NewProduct{SKU: "A", Name: "n", Currency: "EUR"}, []string{"sku"}},
		{"SKU with a space", domain.NewProduct{SKU: "A B", Name: "n", Currency: "EUR"}, []string{"sku"}},
		{"SKU starting with a dash", domain.NewProduct{SKU: "-AB", Name: "n", Currency: "EUR"}, []string{"sku"}},
		{"long name", domain.NewProduct{SKU: "AB", Name: long + "x", Currency: "EUR"}, []string{"name"}},
		{"negative price", domain.NewProduct{SKU: "AB", Name: "n", PriceCents: -1, Currency: "EUR"}, []string{"price_cents"}},
		{"price too high", domain.NewProduct{SKU: "AB", Name: "n", PriceCents: domain.MaxPriceCents + 1, Currency: "EUR"}, []string{"price_cents"}},
		{"currency without two minor units", domain.NewProduct{SKU: "AB", Name: "n", Currency: "JPY"}, []string{"currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			got := fields(t, in.Validate())
			if !slices.Equal(got, tt.want) {
				t.Fatalf("invalid fields %v, want %v", got, tt.want)
			}
			if tt.want == nil && (in.SKU != "AB-1" || in.Name != "Mug" || in.Currency != "EUR") {
				t.Fatalf("not normalised: %+v", in)
			}
		})
	}
}

func TestPatchValidate(t *testing.T) {
	str := func(s string) *string { return &s }
	neg := int64(-1)
	tests := []struct {
		name string
		in   domain.Patch
		want []string
	}{
		{"empty", domain.Patch{}, []string{""}},
		{"name only", domain.Patch{Name: str("x")}, nil},
		{"blank name", domain.Patch{Name: str("  ")}, []string{"name"}},
		{"negative price and bad currency", domain.Patch{PriceCents: &neg, Currency: str("XXX")}, []string{"price_cents", "currency"}},
	}
	for _, tt := range tests {
		in := tt.in
		if got := fields(t, in.Validate()); !slices.Equal(got, tt.want) {
			t.Errorf("%s: invalid fields %v, want %v", tt.name, got, tt.want)
		}
	}
}
