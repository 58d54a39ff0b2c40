package monolith_test

import (
	"net/http"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestRetireWrites: a retired module refuses HTTP writes with a 409
// problem and changes nothing, keeps serving reads, and takes writes again
// when the retirement is rolled back; other modules are untouched.
func TestRetireWrites(t *testing.T) {
	shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
	adjust := map[string]any{"warehouse": "AMS1", "delta": 5, "reason": "delivery"}
	if err := shop.RetireWrites("inventory", true); err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	shop.Get("/api/inventory/stock/P-000001").Expect(http.StatusOK).Decode(&before)
	p := shop.Post("/api/inventory/stock/P-000001/adjustments", adjust).Expect(http.StatusConflict).Problem()
	if p.Type == "" || p.Status != http.StatusConflict {
		t.Fatalf("problem: %+v", p)
	}
	shop.Get("/api/inventory/stock/P-000001").Expect(http.StatusOK).Decode(&after)
	if before["on_hand"] != after["on_hand"] {
		t.Fatalf("a refused write changed stock: %v -> %v", before["on_hand"], after["on_hand"])
	}
	shop.Post("/api/customers", map[string]any{"name": "Ada", "email": "ada@retire.test",
		"address": map[string]any{"line1": "1 Main St", "postal_code": "1000", "city": "Amsterdam", "country": "NL"}}).Expect(http.StatusCreated)
	if err := shop.RetireWrites("inventory", false); err != nil {
		t.Fatal(err)
	}
	shop.Post("/api/inventory/stock/P-000001/adjustments", adjust).Expect(http.StatusOK)
	if err := shop.RetireWrites("billing", true); err == nil {
		t.Fatal("retired a module that does not exist")
	}
}
