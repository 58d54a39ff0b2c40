package extracted_test

import (
	"testing"

	"github.com/stranglerkit/strangler/extracted"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestRoutesCompile: the shop's table parses and compiles, and sends each
// shop path and method to the module the extraction plan expects.
func TestRoutesCompile(t *testing.T) {
	doc, err := extracted.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{routes.DefaultLegacy: {URLs: []string{"http://127.0.0.1:9001"}}}}); err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, tc := range []struct{ module, candidate string }{
		{"inventory", "inventory-service"},
		{"inventory-writes", "inventory-service"},
		{"orders", "orders-service"},
		{"orders-writes", "orders-service"},
		{"customers", ""},
	} {
		m := doc.Module(tc.module)
		if m == nil || m.Candidate != tc.candidate {
			t.Errorf("module %s: %+v", tc.module, m)
		}
	}
}

// TestRoutesWritesNeverFallBack: the write modules, whose service owns
// the data from the flip, let nothing fall back to the monolith, and the
// read modules keep legacy as their fallback.
func TestRoutesWritesNeverFallBack(t *testing.T) {
	doc, err := extracted.Routes()
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{routes.DefaultLegacy: {URLs: []string{"http://127.0.0.1:1"}}}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	want := map[string]routes.Fallback{
		"orders": routes.FallbackAll, "orders-writes": routes.FallbackNone,
		"inventory": routes.FallbackAll, "inventory-writes": routes.FallbackNone,
	}
	for _, r := range tbl.Routes {
		if w, ok := want[r.Module]; ok && r.Fallback != w {
			t.Errorf("route %s of module %s: fallback %q, want %q", r.ID, r.Module, r.Fallback, w)
		}
	}
}

// TestRoutesBackendsResolveToServices: each service backend of the table
// names the registry entry that its service registers under by default,
// else the proxy finds no instance when the phase moves traffic to it.
func TestRoutesBackendsResolveToServices(t *testing.T) {
	doc, err := extracted.Routes()
	if err != nil {
		t.Fatal(err)
	}
	var inv inventory.Config
	inv.SetDefaults(t.TempDir())
	var ord orders.Config
	ord.SetDefaults(t.TempDir())
	for _, tc := range []struct{ backend, registers string }{
		{"inventory-service", inv.RegisterWith.Service},
		{"orders-service", ord.RegisterWith.Service},
	} {
		b, ok := doc.Backends[tc.backend]
		if !ok || b.Service != tc.registers {
			t.Errorf("backend %s = %+v, want service %q, the name its service registers under", tc.backend, b, tc.registers)
		}
	}
}
