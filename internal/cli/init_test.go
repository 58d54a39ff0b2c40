package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/internal/goldentest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestInit runs `strangler init` on specs of each kind and checks the
// files it writes against golden files, that the route table compiles and
// that the config loads with the table as its routes file.
func TestInit(t *testing.T) {
	const legacy = "http://127.0.0.1:3000"
	tests := []struct {
		name string
		spec string // "" for none
		// modules are the table's modules, in order.
		modules []string
	}{
		{"no-spec", "", []string{"default"}},
		{"petstore", "testdata/init/petstore.openapi.yaml", []string{"pets", "store-orders", "health", "default"}},
		{"blog-swagger2", "testdata/init/blog.swagger.json", []string{"articles", "users", "default"}},
		{"untagged", "testdata/init/untagged.openapi.yaml", []string{"invoices", "reports", "root", "default"}},
		{"shop", "../../docs/api/shop.openapi.yaml", []string{"catalog", "customers", "inventory", "orders", "payments", "operations", "default"}},
		{"pressroom", "../../docs/guides/testdata/pressroom/openapi.yaml", []string{"authors", "articles", "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"init", "--legacy", legacy, "--dir", dir}
			if tt.spec != "" {
				args = append(args, "--openapi", tt.spec)
			}
			code, out, errOut := runRoutesCLI(args...)
			if code != 0 {
				t.Fatalf("init: exit %d: %s", code, errOut)
			}
			relative := func(s string) string { return strings.ReplaceAll(s, dir, "DIR") }
			table, err := os.ReadFile(filepath.Join(dir, "routes.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			cfgText, err := os.ReadFile(filepath.Join(dir, "strangler.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			goldentest.Check(t, "testdata/init/"+tt.name+".routes.golden", string(table))
			goldentest.Check(t, "testdata/init/"+tt.name+".config.golden", relative(string(cfgText)))
			goldentest.Check(t, "testdata/init/"+tt.name+".stdout.golden", relative(out))

			doc, err := routes.Parse(table)
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{legacy}}}})
			if err != nil {
				t.Fatalf("the table does not compile: %v", err)
			}
			if !tbl.CatchAll() {
				t.Errorf("the table has no catch-all route")
			}
			var names []string
			for _, m := range doc.Modules {
				names = append(names, m.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.modules, ",") {
				t.Errorf("modules %v, want %v", names, tt.modules)
			}
			cfg, err := config.Load(config.LoadOptions{File: filepath.Join(dir, "strangler.yaml"), LookupEnv: noEnvironment})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Proxy.Legacy != legacy || cfg.Proxy.RoutesFile != filepath.Join(dir, "routes.yaml") || cfg.DataDir != filepath.Join(dir, ".strangler") {
				t.Errorf("config: legacy %q, routes_file %q, data_dir %q", cfg.Proxy.Legacy, cfg.Proxy.RoutesFile, cfg.DataDir)
			}
		})
	}
}

// TestInitMatches checks that the routes made from a spec take the
// requests the spec describes, and leave the rest to the catch-all.
func TestInitMatches(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runRoutesCLI("init", "--legacy", "http://127.0.0.1:3000", "--dir", dir, "--openapi", "testdata/init/petstore.openapi.yaml"); code != 0 {
		t.Fatal(errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "routes.yaml"))
	doc, err := routes.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{"http://127.0.0.1:3000"}}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ method, path, module string }{
		{"GET", "/v1/pets", "pets"},
		{"POST", "/v1/pets", "pets"},
		{"PUT", "/v1/pets", "default"},
		{"GET", "/v1/pets/rex", "pets"},
		{"HEAD", "/v1/pets/rex", "pets"},
		{"DELETE", "/v1/pets/rex", "pets"},
		{"GET", "/v1/pets/rex/photo.png", "pets"},
		{"GET", "/v1/store/orders/7", "store-orders"},
		{"GET", "/v1/store/orders", "default"},
		{"GET", "/v1/health", "health"},
		{"GET", "/pets", "default"},
	}
	for _, tt := range tests {
		r := tbl.Match(&pathRequest{method: tt.method, path: tt.path})
		got := "none"
		if r != nil {
			got = r.Module
		}
		if got != tt.module {
			t.Errorf("%s %s: module %s, want %s", tt.method, tt.path, got, tt.module)
		}
	}
}

// TestInitErrors: bad input is one line on stderr, a non-zero exit, and no
// file written; existing files are kept without --force.
func TestInitErrors(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("openapi: 3.0.0\n"))
		w.Write(make([]byte, 17<<20))
	}))
	defer big.Close()
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no legacy", []string{}, 2, "init needs --legacy URL"},
		{"legacy with a path", []string{"--legacy", "http://app/x"}, 2, "--legacy"},
		{"malformed spec", []string{"--legacy", "http://app", "--openapi", "testdata/init/malformed.openapi.yaml"}, 1, "not a valid OpenAPI 3 or Swagger 2 spec"},
		{"not a spec", []string{"--legacy", "http://app", "--openapi", "testdata/init/blog.swagger.json.nope"}, 1, "no such file"},
		{"no version", []string{"--legacy", "http://app", "--openapi", "../../extracted/routes.yaml"}, 1, `neither an "openapi" nor a "swagger"`},
		{"spec too large", []string{"--legacy", "http://app", "--openapi", big.URL}, 1, "larger than"},
		{"spec not found", []string{"--legacy", "http://app", "--openapi", missing.URL + "/openapi.yaml"}, 1, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			code, _, errOut := runRoutesCLI(append([]string{"init", "--dir", dir}, tt.args...)...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != tt.code || !strings.HasPrefix(lines[0], "strangler: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and a line with %q", code, errOut, tt.code, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("init wrote %s: %v", dir, err)
			}
		})
	}

	dir := t.TempDir()
	keep := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(keep, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runRoutesCLI("init", "--legacy", "http://app", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("existing file: exit %d, %s", code, errOut)
	}
	if b, _ := os.ReadFile(keep); string(b) != "# mine\n" {
		t.Errorf("init overwrote %s without --force", keep)
	}
	if _, err := os.Stat(filepath.Join(dir, "strangler.yaml")); !os.IsNotExist(err) {
		t.Errorf("init wrote strangler.yaml next to a routes.yaml it refused to overwrite")
	}
	if code, _, errOut := runRoutesCLI("init", "--legacy", "http://app", "--dir", dir, "--force"); code != 0 {
		t.Fatalf("--force: %s", errOut)
	}
	if b, _ := os.ReadFile(keep); string(b) == "# mine\n" {
		t.Errorf("--force kept the old file")
	}
}

// pathRequest is a request with a method and a path only, for Table.Match.
type pathRequest struct{ method, path string }

func (r *pathRequest) Method() []byte       { return []byte(r.method) }
func (r *pathRequest) Host() []byte         { return nil }
func (r *pathRequest) Path() []byte         { return []byte(r.path) }
func (r *pathRequest) Header(string) []byte { return nil }
func (r *pathRequest) Query(string) []byte  { return nil }
func (r *pathRequest) Cookie(string) []byte { return nil }
