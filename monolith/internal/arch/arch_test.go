package arch_test

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/monolith/internal/arch"
)

const root = "example.com/shop"

var rules = arch.Rules{
	Root: root,
	Dependencies: map[string][]string{
		"catalog":   nil,
		"inventory": {"catalog"},
		"orders":    {"catalog", "inventory"},
	},
	Wiring: []string{"", "shoptest", "internal/cmd/..."},
}

// pkg builds a package; module roots get api.go and module.go.
func pkg(rel string, imports ...string) arch.Package {
	p := arch.Package{ImportPath: root, Dir: "/src"}
	if rel != "" {
		p.ImportPath += "/" + rel
		p.Dir += "/" + rel
	}
	if !strings.Contains(rel, "/") && rel != "" && rel != "shoptest" {
		p.GoFiles = []string{"api.go", "module.go"}
	} else {
		p.GoFiles = []string{"x.go"}
	}
	for _, imp := range imports {
		if strings.Contains(imp, ".") {
			p.Imports = append(p.Imports, imp) // outside the monolith
		} else {
			p.Imports = append(p.Imports, root+"/"+imp)
		}
	}
	return p
}

// healthy is a graph that follows every rule.
func healthy() []arch.Package {
	return []arch.Package{
		pkg("", "catalog", "inventory", "orders", "fmt"),
		pkg("shoptest", ""),
		pkg("internal/cmd/moddoc", ""),
		pkg("internal/page", "example.com/other/httpx"),
		pkg("catalog", "catalog/internal/service"),
		pkg("catalog/internal/service", "internal/page"),
		pkg("inventory", "inventory/internal/service", "catalog"),
		pkg("inventory/internal/service", "catalog", "internal/page"),
		pkg("orders", "orders/internal/service", "catalog", "inventory"),
		pkg("orders/internal/service", "catalog", "inventory"),
	}
}

// with returns the healthy graph changed by fn.
func with(fn func(pkgs []arch.Package) []arch.Package) []arch.Package { return fn(healthy()) }

func find(pkgs []arch.Package, rel string) *arch.Package {
	for i := range pkgs {
		if pkgs[i].ImportPath == root+"/"+rel || (rel == "" && pkgs[i].ImportPath == root) {
			return &pkgs[i]
		}
	}
	panic("no package " + rel)
}

func addImport(rel, imp string) func([]arch.Package) []arch.Package {
	return func(pkgs []arch.Package) []arch.Package {
		p := find(pkgs, rel)
		p.Imports = append(p.Imports, root+"/"+imp)
		return pkgs
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		rules func(r arch.Rules) arch.Rules
		pkgs  []arch.Package
		want  []string // "rule: detail fragment", one per violation, in any order
	}{
		{name: "healthy graph", pkgs: healthy()},
		{
			name: "import of another module's internals",
			pkgs: with(addImport("orders/internal/service", "inventory/internal/service")),
			want: []string{"internal: orders/internal/service: imports inventory/internal/service"},
		},
		{
			name: "undeclared dependency",
			pkgs: with(addImport("catalog/internal/service", "inventory")),
			want: []string{"undeclared: catalog/internal/service: module catalog uses module inventory", "cycle: the modules' imports form a cycle: catalog → inventory → catalog"},
		},
		{
			name: "undeclared dependency on internals counts twice",
			pkgs: with(addImport("catalog", "orders/internal/service")),
			want: []string{
				"internal: catalog: imports orders/internal/service", "undeclared: catalog: module catalog uses module orders",
				"cycle: the modules' imports form a cycle: catalog → orders → catalog",
				"cycle: the modules' imports form a cycle: catalog → orders → inventory → catalog",
			},
		},
		{
			name: "cycle in the declarations",
			rules: func(r arch.Rules) arch.Rules {
				r.Dependencies = map[string][]string{"catalog": {"orders"}, "inventory": {"catalog"}, "orders": {"catalog", "inventory"}}
				return r
			},
			pkgs: healthy(),
			want: []string{"cycle: Dependencies declare a cycle: catalog → orders → catalog", "cycle: Dependencies declare a cycle: catalog → orders → inventory → catalog"},
		},
		{
			name: "three-module cycle in the imports",
			rules: func(r arch.Rules) arch.Rules {
				r.Dependencies = map[string][]string{"catalog": {"orders"}, "inventory": {"catalog"}, "orders": {"inventory"}}
				return r
			},
			pkgs: with(func(pkgs []arch.Package) []arch.Package {
				find(pkgs, "orders").Imports = []string{root + "/inventory"}
				find(pkgs, "orders/internal/service").Imports = nil
				find(pkgs, "catalog/internal/service").Imports = []string{root + "/orders"}
				return pkgs
			}),
			want: []string{"cycle: Dependencies declare a cycle: catalog → orders → inventory → catalog", "cycle: the modules' imports form a cycle: catalog → orders → inventory → catalog"},
		},
		{
			name: "module imports the wiring",
			pkgs: with(addImport("inventory/internal/service", "shoptest")),
			want: []string{"wiring: inventory/internal/service: imports shoptest"},
		},
		{
			name: "kernel imports a module",
			pkgs: with(addImport("internal/page", "catalog")),
			want: []string{"kernel: internal/page: imports module package catalog"},
		},
		{
			name: "kernel imports the wiring",
			pkgs: with(addImport("internal/page", "")),
			want: []string{"kernel: internal/page: imports"},
		},
		{
			name: "wiring imports internals",
			pkgs: with(addImport("shoptest", "orders/internal/service")),
			want: []string{"internal: shoptest: imports orders/internal/service"},
		},
		{
			name: "package outside any module",
			pkgs: append(healthy(), pkg("billing/internal/x")),
			want: []string{"layout: billing/internal/x: belongs to no declared module"},
		},
		{
			name: "public package inside a module",
			pkgs: append(healthy(), pkg("orders/store")),
			want: []string{"layout: orders/store: a module's packages other than its root belong under orders/internal/"},
		},
		{
			name: "extra file in a module's root",
			pkgs: with(func(pkgs []arch.Package) []arch.Package {
				p := find(pkgs, "catalog")
				p.GoFiles = append(p.GoFiles, "service.go")
				return pkgs
			}),
			want: []string{"layout: catalog: a module's root package holds exactly api.go and module.go"},
		},
		{
			name: "declared module without a package",
			rules: func(r arch.Rules) arch.Rules {
				r.Dependencies = map[string][]string{"catalog": nil, "inventory": {"catalog"}, "orders": {"catalog", "inventory"}, "billing": nil}
				return r
			},
			pkgs: healthy(),
			want: []string{"declaration: module billing is declared but has no package"},
		},
		{
			name: "dependency on an undeclared module",
			rules: func(r arch.Rules) arch.Rules {
				r.Dependencies = map[string][]string{"catalog": {"pricing"}, "inventory": {"catalog"}, "orders": {"catalog", "inventory"}}
				return r
			},
			pkgs: healthy(),
			want: []string{"declaration: module catalog depends on pricing, which is not a declared module"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules
			if tt.rules != nil {
				r = tt.rules(r)
			}
			got := arch.Check(r, tt.pkgs)
			var gotS []string
			for _, v := range got {
				gotS = append(gotS, v.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("violations:\n  %s\nwant %d:\n  %s", strings.Join(gotS, "\n  "), len(tt.want), strings.Join(tt.want, "\n  "))
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(gotS, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("no violation %q among:\n  %s", w, strings.Join(gotS, "\n  "))
				}
			}
		})
	}
}

// sources is an in-memory source tree for CheckAPIUse.
type sources map[string]string

func (s sources) read(p string) ([]byte, error) {
	src, ok := s[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return []byte(src), nil
}

const catalogAPI = `package catalog

type API interface{ Get(id int64) (Product, error) }
type Product struct{ ID int64 }
var ErrNotFound = error(nil)
func ProductRef(id int64) string { return "" }
func (Product) Method() {}
`

const catalogModule = `package catalog

type Module struct{}
func New() *Module { return nil }
`

func TestCheckAPIUse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "only api.go names",
			src: `package service
import "example.com/shop/catalog"
func f(c catalog.API) (catalog.Product, error) { _ = catalog.ProductRef(1); return c.Get(1) }
var _ = catalog.ErrNotFound`,
		},
		{
			name: "constructor from module.go",
			src: `package service
import "example.com/shop/catalog"
var m = catalog.New()`,
			want: []string{"orders/internal/service/x.go uses catalog.New"},
		},
		{
			name: "renamed import",
			src: `package service
import cat "example.com/shop/catalog"
var m *cat.Module`,
			want: []string{"uses catalog.Module"},
		},
		{
			name: "a local variable shadowing the package is not a use",
			src: `package service
import "example.com/shop/catalog"
type T struct{ New int }
func f(x catalog.Product) int { catalog := T{}; return catalog.New }`,
		},
		{
			name: "several violations, each once",
			src: `package service
import "example.com/shop/catalog"
var a, b = catalog.New(), catalog.New()
var c catalog.Module`,
			want: []string{"uses catalog.Module", "uses catalog.New"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := sources{
				"/src/catalog/api.go":                catalogAPI,
				"/src/catalog/module.go":             catalogModule,
				"/src/orders/internal/service/x.go":  tt.src,
				"/src/orders/api.go":                 "package orders\n",
				"/src/orders/module.go":              "package orders\n",
				"/src/catalog/internal/service/x.go": "package service\n",
			}
			pkgs := []arch.Package{
				pkg("catalog"), pkg("catalog/internal/service"),
				pkg("orders", "orders/internal/service"), pkg("orders/internal/service", "catalog"),
			}
			got, err := arch.CheckAPIUse(rules, pkgs, src.read)
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, v := range got {
				gotS = append(gotS, v.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("violations:\n  %s\nwant:\n  %s", strings.Join(gotS, "\n  "), strings.Join(tt.want, "\n  "))
			}
			for i, w := range tt.want {
				if !strings.Contains(gotS[i], w) || got[i].Rule != "api" {
					t.Errorf("violation %d = %q, want one containing %q", i, gotS[i], w)
				}
			}
		})
	}
}

func TestCheckAPIUseNeedsAPIFile(t *testing.T) {
	_, err := arch.CheckAPIUse(rules, []arch.Package{pkg("catalog")}, sources{}.read)
	if err == nil || !strings.Contains(err.Error(), "api.go") {
		t.Fatalf("CheckAPIUse without api.go = %v", err)
	}
}
