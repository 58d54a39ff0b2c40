// Package arch checks the shop monolith's module boundaries on a package
// graph, such as the one `go list -deps -json` prints. It is pure: it reads
// no files itself, so that its rules can be tested on made-up graphs.
//
// The rules:
//   - every package under the monolith is a module's (<module>/...), a
//     wiring package (the root, shoptest, tools) or the shared kernel
//     (internal/...); nothing else;
//   - a module's root package holds exactly api.go and module.go, and its
//     other packages live under <module>/internal/;
//   - a module imports another module only through its root package, only
//     if Dependencies allows it, and never imports wiring packages;
//   - the kernel imports no module and no wiring package;
//   - neither the declared nor the actual module graph has a cycle;
//   - code in one module uses only the identifiers another module's api.go
//     declares (CheckAPIUse).
package arch

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Package is one Go package, with the fields of `go list -json` that the
// rules need.
type Package struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

// Rules describe the monolith's layout.
type Rules struct {
	// Root is the monolith's import path.
	Root string
	// Dependencies maps each module to the modules it may use.
	Dependencies map[string][]string
	// Wiring lists the packages, relative to Root, that put modules
	// together and may use any module's root package: "" for Root itself,
	// and "dir/..." for a tree.
	Wiring []string
}

// Violation is one broken rule.
type Violation struct {
	// Package is the import path of the offending package, relative to
	// the monolith's root; empty for a violation in the declarations.
	Package string
	// Rule names the rule: layout, internal, undeclared, wiring, kernel,
	// declaration, cycle or api.
	Rule string
	// Detail says what is wrong.
	Detail string
}

func (v Violation) String() string {
	if v.Package == "" {
		return v.Rule + ": " + v.Detail
	}
	return v.Rule + ": " + v.Package + ": " + v.Detail
}

type kind int

const (
	outside kind = iota
	moduleRoot
	moduleInner
	wiring
	kernel
	unknown
)

type class struct {
	kind   kind
	module string
	rel    string
}

func (r Rules) classify(importPath string) class {
	if importPath != r.Root && !strings.HasPrefix(importPath, r.Root+"/") {
		return class{kind: outside}
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(importPath, r.Root), "/")
	for _, w := range r.Wiring {
		if rel == w || (strings.HasSuffix(w, "/...") && (rel == strings.TrimSuffix(w, "/...") || strings.HasPrefix(rel, strings.TrimSuffix(w, "...")))) {
			return class{kind: wiring, rel: rel}
		}
	}
	first, _, _ := strings.Cut(rel, "/")
	if _, ok := r.Dependencies[first]; ok {
		if rel == first {
			return class{kind: moduleRoot, module: first, rel: rel}
		}
		return class{kind: moduleInner, module: first, rel: rel}
	}
	if first == "internal" {
		return class{kind: kernel, rel: rel}
	}
	return class{kind: unknown, rel: rel}
}

// Check applies the graph rules to pkgs, which must include every package
// of the monolith.
func Check(r Rules, pkgs []Package) []Violation {
	var out []Violation
	add := func(pkg, rule, format string, args ...any) {
		out = append(out, Violation{Package: pkg, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	modules := sortedKeys(r.Dependencies)
	for _, m := range modules {
		for _, d := range r.Dependencies[m] {
			if _, ok := r.Dependencies[d]; !ok {
				add("", "declaration", "module %s depends on %s, which is not a declared module", m, d)
			}
			if d == m {
				add("", "declaration", "module %s depends on itself", m)
			}
		}
	}
	seen := map[string]bool{}
	actual := map[string][]string{}
	sorted := slices.Clone(pkgs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ImportPath < sorted[j].ImportPath })
	for _, p := range sorted {
		c := r.classify(p.ImportPath)
		switch c.kind {
		case outside:
			continue
		case unknown:
			add(c.rel, "layout", "belongs to no declared module; add the module to Dependencies or move the package under internal/")
			continue
		case moduleRoot:
			seen[c.module] = true
			files := slices.Clone(p.GoFiles)
			sort.Strings(files)
			if !slices.Equal(files, []string{"api.go", "module.go"}) {
				add(c.rel, "layout", "a module's root package holds exactly api.go and module.go, not %v; the rest belongs under %s/internal/", files, c.module)
			}
		case moduleInner:
			if !strings.HasPrefix(c.rel, c.module+"/internal/") {
				add(c.rel, "layout", "a module's packages other than its root belong under %s/internal/, where other modules cannot import them", c.module)
			}
		}
		for _, imp := range p.Imports {
			ic := r.classify(imp)
			irel := ic.rel
			switch c.kind {
			case moduleRoot, moduleInner:
				switch ic.kind {
				case moduleRoot, moduleInner:
					if ic.module == c.module {
						continue
					}
					if ic.kind == moduleInner {
						add(c.rel, "internal", "imports %s, an internal package of module %s; use %s's api.go", irel, ic.module, ic.module)
					}
					if !slices.Contains(r.Dependencies[c.module], ic.module) {
						add(c.rel, "undeclared", "module %s uses module %s, which Dependencies does not allow", c.module, ic.module)
					}
					if !slices.Contains(actual[c.module], ic.module) {
						actual[c.module] = append(actual[c.module], ic.module)
					}
				case wiring:
					add(c.rel, "wiring", "imports %s; modules must not depend on the packages that wire them", irel)
				}
			case kernel:
				switch ic.kind {
				case moduleRoot, moduleInner:
					add(c.rel, "kernel", "imports module package %s; the shared kernel must not know the modules", irel)
				case wiring:
					add(c.rel, "kernel", "imports %s; the shared kernel must not know the wiring", irel)
				}
			case wiring:
				if ic.kind == moduleInner {
					add(c.rel, "internal", "imports %s, an internal package of module %s", irel, ic.module)
				}
			}
		}
	}
	for _, m := range modules {
		if !seen[m] {
			add("", "declaration", "module %s is declared but has no package %s", m, path.Join(r.Root, m))
		}
	}
	for _, cyc := range cycles(r.Dependencies) {
		add("", "cycle", "Dependencies declare a cycle: %s", strings.Join(cyc, " → "))
	}
	for _, cyc := range cycles(actual) {
		add("", "cycle", "the modules' imports form a cycle: %s", strings.Join(cyc, " → "))
	}
	return out
}

// cycles returns each elementary cycle of g that a depth-first search
// meets, as a path that starts and ends at its smallest node.
func cycles(g map[string][]string) [][]string {
	const (
		white = iota
		grey
		black
	)
	state := map[string]int{}
	var stack []string
	found := map[string][]string{}
	var visit func(n string)
	visit = func(n string) {
		state[n] = grey
		stack = append(stack, n)
		next := slices.Clone(g[n])
		sort.Strings(next)
		for _, m := range next {
			switch state[m] {
			case white:
				visit(m)
			case grey:
				i := slices.Index(stack, m)
				cyc := slices.Clone(stack[i:])
				min := 0
				for j := range cyc {
					if cyc[j] < cyc[min] {
						min = j
					}
				}
				cyc = append(cyc[min:], cyc[:min]...)
				cyc = append(cyc, cyc[0])
				found[strings.Join(cyc, " ")] = cyc
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = black
	}
	for _, n := range sortedKeys(g) {
		if state[n] == white {
			visit(n)
		}
	}
	out := make([][]string, 0, len(found))
	for _, k := range sortedKeys(found) {
		out = append(out, found[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
