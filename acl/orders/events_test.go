package orders_test

import (
	"errors"
	"strings"
	"testing"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
)

// TestDecodeCustomer reads the golden customer events: each type, an older
// payload (email_address, no id or version), and a newer version with a
// status and unknown fields.
func TestDecodeCustomer(t *testing.T) {
	tests := []struct {
		file string
		want aclorders.CustomerChange
	}{
		{"customer.created.json", aclorders.CustomerChange{ID: 17, Email: "anna.devries@example.nl", Status: aclorders.ActiveCustomer, Version: 1, At: at("2026-03-01T09:00:00Z")}},
		{"customer.changed.json", aclorders.CustomerChange{ID: 17, Email: "anna@devries.example.org", Status: aclorders.ActiveCustomer, Version: 2, At: at("2026-03-05T10:00:00Z")}},
		{"customer.changed.old.json", aclorders.CustomerChange{ID: 17, Email: "anna@devries.example.org", Status: aclorders.ActiveCustomer, At: at("2026-03-05T10:00:00Z")}},
		{"customer.changed.future.json", aclorders.CustomerChange{ID: 17, Email: "anna@devries.example.org", Status: aclorders.ActiveCustomer, Version: 3, At: at("2026-03-05T10:00:00Z")}},
		{"customer.deleted.json", aclorders.CustomerChange{ID: 17, Status: aclorders.DeletedCustomer, At: at("2026-03-06T11:00:00Z")}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := aclorders.DecodeCustomer(readEvent(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := aclorders.DecodeCustomer(readEvent(t, "customer.malformed.json")); !errors.Is(err, aclorders.ErrMalformed) {
		t.Fatalf("malformed: %v, want ErrMalformed", err)
	}
}

// TestEmailCommand translates customer events into the commands that
// update the e-mail on a customer's orders.
func TestEmailCommand(t *testing.T) {
	tests := []struct {
		file string
		ok   bool
		want aclorders.UpdateCustomerEmail
	}{
		{"customer.created.json", true, aclorders.UpdateCustomerEmail{CustomerID: 17, Email: "anna.devries@example.nl", Version: 1, CausationID: "0192f7a4-6c1e-7d3b-9a55-1f0e2b8c4f01"}},
		{"customer.changed.json", true, aclorders.UpdateCustomerEmail{CustomerID: 17, Email: "anna@devries.example.org", Version: 2, CausationID: "0192f7a4-6c1e-7d3b-9a55-1f0e2b8c4f02"}},
		{"customer.changed.old.json", true, aclorders.UpdateCustomerEmail{CustomerID: 17, Email: "anna@devries.example.org", CausationID: "0192f7a4-6c1e-7d3b-9a55-1f0e2b8c4f03"}},
		{"customer.changed.future.json", true, aclorders.UpdateCustomerEmail{CustomerID: 17, Email: "anna@devries.example.org", Version: 3, CausationID: "0192f7a4-6c1e-7d3b-9a55-1f0e2b8c4f04"}},
		// Orders keep the e-mail of a deleted customer.
		{"customer.deleted.json", false, aclorders.UpdateCustomerEmail{}},
		// Not a customer event.
		{"product.changed.json", false, aclorders.UpdateCustomerEmail{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, ok, err := aclorders.EmailCommand(readEvent(t, tt.file))
			if err != nil || ok != tt.ok || got != tt.want {
				t.Fatalf("EmailCommand = %+v, %v, %v; want %+v, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
	if _, _, err := aclorders.EmailCommand(readEvent(t, "customer.malformed.json")); !errors.Is(err, aclorders.ErrMalformed) {
		t.Fatalf("malformed: %v, want ErrMalformed", err)
	}
}

// TestDecodePrice reads the golden product events: a change, a backfill
// snapshot (no product_ref, numbers as strings, active as 0, lower-case
// SKU and currency) and an older payload with the price in major units.
func TestDecodePrice(t *testing.T) {
	tests := []struct {
		file string
		want aclorders.PriceChange
	}{
		{"product.changed.json", aclorders.PriceChange{SKU: "COF-ETH-250", ProductRef: "P-000001", PriceCents: 1350, Currency: "EUR", Active: true, Version: 2, At: at("2026-03-04T05:00:00Z")}},
		{"product.snapshot.json", aclorders.PriceChange{SKU: "COF-COL-1000", ProductRef: "P-000043", PriceCents: 4200, Currency: "EUR", Active: false, Version: 5, At: at("2026-03-04T05:06:07.5Z")}},
		{"product.changed.old.json", aclorders.PriceChange{SKU: "COF-ETH-250", ProductRef: "P-000001", PriceCents: 1290, Currency: "EUR", Active: true, At: at("2026-03-04T05:00:00Z")}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := aclorders.DecodePrice(readEvent(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
	_, err := aclorders.DecodePrice(readEvent(t, "product.malformed.json"))
	if !errors.Is(err, aclorders.ErrMalformed) || !strings.Contains(err.Error(), "sku is missing") || !strings.Contains(err.Error(), "more than two decimals") {
		t.Fatalf("malformed: %v", err)
	}
	// A negative price below one unit was read as positive, its sign lost
	// with the zero before the point.
	if p, err := aclorders.DecodePrice(readEvent(t, "product.changed.negative.json")); !errors.Is(err, aclorders.ErrMalformed) || !strings.Contains(err.Error(), "price_cents -50 is negative") {
		t.Fatalf("price -0.50: %+v, %v; want a malformed negative price", p, err)
	}
}
