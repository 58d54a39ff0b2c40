package moddoc_test

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/internal/moddoc"
)

func TestRead(t *testing.T) {
	set := db.Migrations{Name: "x", FS: fstest.MapFS{
		"postgres/0001_init.up.sql": {Data: []byte(`-- CREATE TABLE commented_out (id INT);
CREATE TABLE x_items (id BIGINT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS "x_lines" (item_id BIGINT REFERENCES x_items (id), n INT);
CREATE INDEX x_lines_idx ON x_lines (n);`)},
		"postgres/0001_init.down.sql":     {Data: []byte(`DROP TABLE x_lines; DROP TABLE x_items;`)},
		"postgres/0002_rename.up.sql":     {Data: []byte(`ALTER TABLE x_lines RENAME TO x_item_lines; CREATE TABLE x_tmp (id INT);`)},
		"postgres/0010_drop_tmp.up.sql":   {Data: []byte(`DROP TABLE IF EXISTS x_tmp;`)},
		"postgres/0003_audit.up.sql":      {Data: []byte("CREATE TABLE x_audit (\n  item_id BIGINT,\n  FOREIGN KEY (item_id) REFERENCES other_module_table (id)\n);")},
		"sqlite/0001_init.up.sql":         {Data: []byte(`CREATE TABLE x_items (id INTEGER PRIMARY KEY);`)},
		"postgres/readme.txt":             {Data: []byte(`CREATE TABLE not_a_migration (id INT);`)},
		"postgres/0002_rename.down.sql":   {Data: []byte(`ALTER TABLE x_item_lines RENAME TO x_lines;`)},
		"postgres/0010_drop_tmp.down.sql": {Data: []byte(`CREATE TABLE x_tmp (id INT);`)},
	}}
	s, err := moddoc.Read(set, db.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x_items", "x_item_lines", "x_audit"}; !slices.Equal(s.Tables, want) {
		t.Errorf("tables %v, want %v", s.Tables, want)
	}
	if want := []string{"other_module_table", "x_items"}; !slices.Equal(s.References, want) {
		t.Errorf("references %v, want %v", s.References, want)
	}
	s, err = moddoc.Read(set, db.SQLite)
	if err != nil || !slices.Equal(s.Tables, []string{"x_items"}) {
		t.Errorf("sqlite tables %v, %v", s.Tables, err)
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		deps map[string][]string
		want string
	}{
		{map[string][]string{"orders": {"catalog", "inventory"}, "inventory": {"catalog"}, "catalog": nil, "customers": nil}, "catalog customers inventory orders"},
		{map[string][]string{"a": {"b"}, "b": nil, "c": {"a"}}, "b a c"},
		{map[string][]string{"a": {"b"}, "b": {"a"}, "c": nil}, "c a b"},
	}
	for _, tt := range tests {
		if got := strings.Join(moddoc.Order(tt.deps), " "); got != tt.want {
			t.Errorf("Order(%v) = %s, want %s", tt.deps, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	src := "// Package x keeps the shop's things. It does more.\n// Much more.\npackage x\n"
	got, err := moddoc.Summary("x.go", []byte(src))
	if err != nil || got != "Package x keeps the shop's things." {
		t.Fatalf("Summary = %q, %v", got, err)
	}
	if _, err := moddoc.Summary("y.go", []byte("package y\n")); err == nil {
		t.Fatal("Summary of a file without a package comment succeeded")
	}
}

func TestRender(t *testing.T) {
	out := string(moddoc.Render([]moddoc.Module{
		{Name: "catalog", Summary: "Products.", Tables: []string{"catalog_products"}, Set: db.Migrations{Name: "catalog"}},
		{Name: "orders", Summary: "Orders.", Deps: []string{"catalog"}, Tables: []string{"orders", "order_lines"}, Set: db.Migrations{Name: "orders"}},
	}))
	for _, want := range []string{
		moddoc.Header,
		"```mermaid\nflowchart LR\n",
		`    subgraph catalog["catalog · /api/catalog"]` + "\n" + `        catalog_catalog_products[("catalog_products")]`,
		"    orders --> catalog\n",
		"| [orders](../monolith/orders/) | `/api/orders` | catalog | `orders`, `order_lines` | `migrations/monolith/orders/` (`schema_migrations_orders`) |",
		"- **catalog**: Products.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rendering lacks %q:\n%s", want, out)
		}
	}
}
