package domain_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/monolith/orders/internal/domain"
)

func TestLifecycle(t *testing.T) {
	// allowed[from] lists the statuses an order in from may move to.
	allowed := map[domain.Status][]domain.Status{
		domain.StatusPlaced:    {domain.StatusPaid, domain.StatusCancelled},
		domain.StatusPaid:      {domain.StatusShipped, domain.StatusCancelled},
		domain.StatusShipped:   nil,
		domain.StatusCancelled: nil,
	}
	for _, from := range domain.Statuses {
		for _, to := range domain.Statuses {
			want := slices.Contains(allowed[from], to)
			if got := slices.Contains(domain.From(to), from); got != want {
				t.Errorf("%s → %s allowed = %v, want %v", from, to, got, want)
			}
		}
	}
	tests := []struct {
		s          domain.Status
		name       string
		open, dead bool
	}{
		{domain.StatusPlaced, "placed", true, false},
		{domain.StatusPaid, "paid", true, false},
		{domain.StatusShipped, "shipped", false, true},
		{domain.StatusCancelled, "cancelled", false, true},
	}
	for _, tt := range tests {
		if tt.s.String() != tt.name || tt.s.Open() != tt.open || !tt.s.Valid() {
			t.Errorf("status %d: %s, open %v, valid %v", int(tt.s), tt.s, tt.s.Open(), tt.s.Valid())
		}
	}
	if domain.Status(15).Valid() || domain.Status(15).String() != "status(15)" {
		t.Error("status 15 is valid or named")
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]domain.Status{"10": domain.StatusPlaced, "90": domain.StatusCancelled, " 20 ": domain.StatusPaid} {
		if got, err := domain.ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "15", "paid", "10.0"} {
		if _, err := domain.ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) succeeded", bad)
		}
	}
}

func TestNewOrderCheck(t *testing.T) {
	line := func(sku string, q int) domain.NewLine { return domain.NewLine{SKU: sku, Quantity: q} }
	many := make([]domain.NewLine, domain.MaxLines+1)
	for i := range many {
		many[i] = line("S-"+strings.Repeat("X", i+1), 1)
	}
	tests := []struct {
		name string
		in   domain.NewOrder
		want []string
	}{
		{"valid", domain.NewOrder{CustomerID: 1, Lines: []domain.NewLine{line(" ab-1 ", 1), line("AB-2", domain.MaxQuantity)}}, nil},
		{"nothing", domain.NewOrder{}, []string{"customer_id", "lines"}},
		{"negative customer", domain.NewOrder{CustomerID: -1, Lines: []domain.NewLine{line("A1", 1)}}, []string{"customer_id"}},
		{"too many lines", domain.NewOrder{CustomerID: 1, Lines: many}, []string{"lines"}},
		{"bad lines", domain.NewOrder{CustomerID: 1, Lines: []domain.NewLine{line("", 1), line("A1", 0), line("A2", -3), line("a1", domain.MaxQuantity+1)}},
			[]string{"lines[0].sku", "lines[1].quantity", "lines[2].quantity", "lines[3].sku", "lines[3].quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			var got []string
			for _, e := range in.Check(func(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }) {
				got = append(got, e.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("invalid fields %v, want %v", got, tt.want)
			}
			if tt.want == nil && in.Lines[0].SKU != "AB-1" {
				t.Fatalf("SKU not normalised: %q", in.Lines[0].SKU)
			}
		})
	}
}
