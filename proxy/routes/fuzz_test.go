package routes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to the parser and the compiler. They
// must never panic, and a table that compiles must compile again, the same,
// from its own YAML rendering.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/invalid", "testdata/match"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("modules: [{name: a, routes: [{id: r, prefix: /}]}]"))
	f.Add([]byte(`{"modules":[{"name":"a","routes":[{"id":"r","path":"/{x}"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := Parse(b)
		if err != nil {
			return
		}
		tbl, err := Compile(doc, legacyOpt)
		if err != nil {
			if len(err.Error()) == 0 {
				t.Fatal("empty error")
			}
			return
		}
		y, err := doc.YAML()
		if err != nil {
			t.Fatalf("compiled table does not render: %v", err)
		}
		again, err := Parse(y)
		if err != nil {
			t.Fatalf("rendered table does not parse: %v\n%s", err, y)
		}
		tbl2, err := Compile(again, legacyOpt)
		if err != nil {
			t.Fatalf("rendered table does not compile: %v\n%s", err, y)
		}
		if len(tbl.Routes) != len(tbl2.Routes) {
			t.Fatalf("round trip changed the routes: %d vs %d", len(tbl.Routes), len(tbl2.Routes))
		}
		// Every route must be reachable by some request without panicking.
		for _, rt := range tbl.Routes {
			_ = tbl.Match(&fakeRequest{method: "GET", host: "h", path: rt.Pattern.Raw})
		}
	})
}

// FuzzMatch checks the path matcher against the pattern's own Match on
// arbitrary patterns and paths, and that normalizing is idempotent.
func FuzzMatch(f *testing.F) {
	seeds := []struct {
		pattern string
		prefix  bool
		path    string
	}{
		{"/api/orders", true, "/api/orders/7"},
		{"/api/{id}", false, "/api/7"},
		{"/", true, "/x/y"},
		{"/", false, "/"},
		{"/a/", false, "/a/"},
		{"/a/{b}/c", true, "/a/%62/c/d"},
		{"/api", true, "/api/../admin"},
		{"/x", false, "//x"},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.prefix, s.path)
	}
	f.Fuzz(func(t *testing.T, pattern string, prefix bool, path string) {
		norm, _, ok := NormalizePath(nil, []byte(path))
		if ok {
			again, changed, ok2 := NormalizePath(nil, norm)
			if !ok2 || changed || string(again) != string(norm) {
				t.Fatalf("NormalizePath is not idempotent: %q -> %q -> %q", path, norm, again)
			}
			if strings.Contains(string(norm), "//") || strings.Contains(string(norm), "/./") || strings.Contains(string(norm), "/../") {
				t.Fatalf("NormalizePath(%q) = %q still has empty or dot segments", path, norm)
			}
		}
		p, err := ParsePattern(pattern, prefix)
		if err != nil || !ok {
			return
		}
		field := "path"
		if prefix {
			field = "prefix"
		}
		doc := &Doc{Modules: []Module{{Name: "m", Routes: []RouteDef{{ID: "r"}}}}}
		if prefix {
			doc.Modules[0].Routes[0].Prefix = pattern
		} else {
			doc.Modules[0].Routes[0].Path = pattern
		}
		tbl, err := Compile(doc, legacyOpt)
		if err != nil {
			t.Fatalf("pattern %s %q parses but does not compile: %v", field, pattern, err)
		}
		want := p.Match(norm)
		got := tbl.Match(&fakeRequest{method: "GET", host: "h", path: string(norm)}) != nil
		if got != want {
			t.Fatalf("%s %q on %q: table says %v, pattern says %v", field, pattern, norm, got, want)
		}
	})
}
