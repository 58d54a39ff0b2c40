package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestInventoryAndDiscoverCommands sends traffic through a real proxy with
// one catch-all route and a route nothing reaches, and runs `strangler
// routes inventory` and `discover` against it: the inventory shows the
// counts and the retirable route, and the discovered fragment compiles
// into a route table.
func TestInventoryAndDiscoverCommands(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	table := `
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: reports
    routes: [{id: reports, prefix: /reports}]
`
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: table})
	for _, path := range []string{"/api/articles/how-to-brew", "/api/articles/why-tea-matters", "/api/users/7", "/api/users/8", "/healthz"} {
		resp, _ := proxytest.Get(t, p.URL+path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	admin := []string{"--data-dir", t.TempDir(), "--admin", p.AdminAddr(), "--token", proxytest.Token}
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := runRoutesCLI(append(append([]string{"routes"}, args...), admin...)...)
		if code != 0 {
			t.Fatalf("routes %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	out := run("inventory", "--templates")
	for _, want := range []string{"MODULE", "LAST LEGACY", "default", "/api/articles/{slug}", "/api/users/{id}", "reports", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("inventory lacks %q:\n%s", want, out)
		}
	}
	out = run("inventory", "--unused-for", "30d")
	if !strings.Contains(out, "reports") || strings.Contains(out, "default  default") || !strings.Contains(out, "1 routes had no legacy traffic in the last 30d") {
		t.Errorf("inventory --unused-for 30d:\n%s", out)
	}
	var inv api.Inventory
	if err := json.Unmarshal([]byte(run("inventory", "-o", "json")), &inv); err != nil || len(inv.Routes) != 2 || inv.Routes[0].Requests != 5 {
		t.Errorf("inventory -o json = %+v, %v", inv, err)
	}

	frag := run("discover", "--module", "default")
	doc, err := routes.Parse([]byte(frag))
	if err != nil {
		t.Fatalf("discover's fragment does not parse: %v\n%s", err, frag)
	}
	if _, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{legacy.URL}}}}); err != nil {
		t.Fatalf("discover's fragment does not compile: %v\n%s", err, frag)
	}
	for _, want := range []string{"  - name: articles", "      - {id: articles-slug, methods: [GET], path: '/api/articles/{slug}'}", "  - name: users",
		"      - {id: users-id, methods: [GET], path: '/api/users/{id}'}", "  - name: healthz"} {
		if !strings.Contains(frag, want) {
			t.Errorf("discover lacks %q:\n%s", want, frag)
		}
	}
	// Its modules paste under those of a routes file as written by hand or
	// by init: the lines after "modules:", appended to the table.
	_, modules, ok := strings.Cut(frag, "modules:\n")
	if !ok {
		t.Fatalf("discover's fragment has no modules:\n%s", frag)
	}
	pasted, err := compileTable([]byte(table+modules), legacy.URL)
	if err != nil {
		t.Fatalf("the table with discover's modules pasted in does not compile: %v\n%s", err, table+modules)
	}
	if len(pasted.Modules) != 5 {
		t.Errorf("the pasted table has %d modules, want 5:\n%s", len(pasted.Modules), table+modules)
	}
	if out := run("discover", "-o", "yaml"); out == "" || !strings.Contains(out, "modules:") {
		t.Errorf("discover -o yaml:\n%s", out)
	}
	var d api.Discovery
	if err := json.Unmarshal([]byte(run("discover", "-o", "json")), &d); err != nil || len(d.Modules) != 3 {
		t.Errorf("discover -o json = %+v, %v", d, err)
	}

	code, _, errOut := runRoutesCLI(append([]string{"routes", "inventory", "--unused-for", "soon"}, admin...)...)
	if code != 2 || !strings.Contains(errOut, "--unused-for must be a positive duration") {
		t.Errorf("--unused-for soon: exit %d, %s", code, errOut)
	}
}
