package domain_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/customers/internal/domain"
)

func TestNewCustomerValidate(t *testing.T) {
	addr := func() *domain.Address {
		return &domain.Address{Line1: " Damrak 1 ", PostalCode: "1012 LG", City: "Amsterdam", Country: " nl "}
	}
	with := func(email string, a *domain.Address) domain.NewCustomer {
		return domain.NewCustomer{Email: email, Name: "Ada", Address: a}
	}
	tests := []struct {
		name string
		in   domain.NewCustomer
		want []string
	}{
		{"valid", with(" Ada@Example.COM ", addr()), nil},
		{"plus address", with("ada+shop@example.co.uk", addr()), nil},
		{"no address", with("ada@example.com", nil), []string{"address"}},
		{"no at sign", with("ada.example.com", addr()), []string{"email"}},
		{"display name", with("Ada <ada@example.com>", addr()), []string{"email"}},
		{"dotless domain", with("ada@example", addr()), []string{"email"}},
		{"two addresses", with("a@example.com, b@example.com", addr()), []string{"email"}},
		{"empty address fields", with("ada@example.com", &domain.Address{Country: "Holland"}), []string{"address.line1", "address.postal_code", "address.city", "address.country"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			err := in.Validate()
			var got []string
			if err != nil {
				var p *httpx.Problem
				if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity {
					t.Fatalf("error %v is not a 422 problem", err)
				}
				for _, f := range p.Errors {
					got = append(got, f.Field)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("invalid fields %v, want %v", got, tt.want)
			}
			if tt.name == "valid" && (in.Email != "ada@example.com" || in.Address.Country != "NL" || in.Address.Line1 != "Damrak 1") {
				t.Fatalf("not normalised: %+v %+v", in, in.Address)
			}
		})
	}
}
