package extracted_test

import (
	"testing"

	"github.com/stranglerkit/strangler/extracted"
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
