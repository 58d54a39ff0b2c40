package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"path/filepath"
	"sort"
	"strconv"
)

// ReadFile reads a source file by its path.
type ReadFile func(path string) ([]byte, error)

// CheckAPIUse checks that the code of each module refers to another module
// only through names its api.go declares. Module root packages hold
// module.go too, whose constructor is for the wiring, not for other modules;
// the compiler alone would let another module call it.
func CheckAPIUse(r Rules, pkgs []Package, read ReadFile) ([]Violation, error) {
	apis := map[string]map[string]bool{}
	for _, p := range pkgs {
		c := r.classify(p.ImportPath)
		if c.kind != moduleRoot {
			continue
		}
		names, err := declared(read, filepath.Join(p.Dir, "api.go"))
		if err != nil {
			return nil, err
		}
		apis[c.module] = names
	}
	var out []Violation
	for _, p := range pkgs {
		c := r.classify(p.ImportPath)
		if c.kind != moduleRoot && c.kind != moduleInner {
			continue
		}
		for _, f := range p.GoFiles {
			file := filepath.Join(p.Dir, f)
			src, err := read(file)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", file, err)
			}
			uses, err := selectors(file, src, func(imp string) (string, bool) {
				ic := r.classify(imp)
				return ic.module, ic.kind == moduleRoot && ic.module != c.module
			})
			if err != nil {
				return nil, err
			}
			for _, u := range uses {
				if names, ok := apis[u.module]; ok && !names[u.name] {
					out = append(out, Violation{Package: c.rel, Rule: "api", Detail: fmt.Sprintf(
						"%s uses %s.%s, which %s/api.go does not declare; other modules may use only what api.go declares", path.Join(c.rel, f), u.module, u.name, u.module)})
				}
			}
		}
	}
	return out, nil
}

// declared returns the top-level names that a Go file declares.
func declared(read ReadFile, file string) (map[string]bool, error) {
	src, err := read(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				names[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names[n.Name] = true
					}
				}
			}
		}
	}
	return names, nil
}

type use struct{ module, name string }

// selectors returns the qualified identifiers (pkg.Name) a file uses from
// the imports that match reports as another module's root package.
func selectors(file string, src []byte, match func(importPath string) (module string, ok bool)) ([]use, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, src, 0)
	if err != nil {
		return nil, err
	}
	local := map[string]string{} // local package name -> module
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		m, ok := match(p)
		if !ok {
			continue
		}
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		local[name] = m
	}
	if len(local) == 0 {
		return nil, nil
	}
	seen := map[use]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		// A package name resolves to no object in the file; a variable
		// that shadows it does.
		if !ok || x.Obj != nil {
			return true
		}
		if m, ok := local[x.Name]; ok {
			seen[use{m, sel.Sel.Name}] = true
		}
		return true
	})
	out := make([]use, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].module+out[i].name < out[j].module+out[j].name })
	return out, nil
}
