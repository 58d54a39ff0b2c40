package routes

import (
	"encoding/json"
	"fmt"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/internal/goldentest"
)

// legacyOpt is what the proxy adds from its config: the legacy backend.
var legacyOpt = Options{Backends: map[string]Backend{"legacy": {URLs: []string{"http://127.0.0.1:9001"}}}}

// fakeRequest is a parsed request line of the match fixtures:
// "METHOD /path?query host=H header:Name=V cookie:Name=V".
type fakeRequest struct {
	method, host, path string
	headers            map[string]string
	query              url.Values
	cookies            map[string]string
}

func parseFake(t *testing.T, line string) *fakeRequest {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("bad request line %q", line)
	}
	r := &fakeRequest{method: f[0], host: "localhost", headers: map[string]string{}, cookies: map[string]string{}}
	rawPath, rawQuery, _ := strings.Cut(f[1], "?")
	norm, _, ok := NormalizePath(nil, []byte(rawPath))
	if !ok {
		t.Fatalf("bad path in %q", line)
	}
	r.path = string(norm)
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	r.query = q
	for _, opt := range f[2:] {
		switch {
		case strings.HasPrefix(opt, "host="):
			r.host = strings.TrimPrefix(opt, "host=")
		case strings.HasPrefix(opt, "header:"):
			k, v, _ := strings.Cut(strings.TrimPrefix(opt, "header:"), "=")
			r.headers[textproto.CanonicalMIMEHeaderKey(k)] = v
		case strings.HasPrefix(opt, "cookie:"):
			k, v, _ := strings.Cut(strings.TrimPrefix(opt, "cookie:"), "=")
			r.cookies[k] = v
		default:
			t.Fatalf("bad option %q in %q", opt, line)
		}
	}
	return r
}

func (r *fakeRequest) Method() []byte { return []byte(r.method) }
func (r *fakeRequest) Host() []byte   { return []byte(r.host) }
func (r *fakeRequest) Path() []byte   { return []byte(r.path) }
func (r *fakeRequest) Header(n string) []byte {
	if v, ok := r.headers[n]; ok {
		return []byte(v)
	}
	return nil
}
func (r *fakeRequest) Query(n string) []byte {
	if v := r.query.Get(n); v != "" {
		return []byte(v)
	}
	return nil
}
func (r *fakeRequest) Cookie(n string) []byte {
	if v, ok := r.cookies[n]; ok {
		return []byte(v)
	}
	return nil
}

// TestMatchGolden runs the request lines of each testdata/match fixture
// through its table and compares the chosen routes with the golden file.
func TestMatchGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/match/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var fx struct {
				Table    yaml.Node `yaml:"table"`
				Requests []string  `yaml:"requests"`
			}
			if err := yaml.Unmarshal(raw, &fx); err != nil {
				t.Fatal(err)
			}
			tb, err := yaml.Marshal(&fx.Table)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Parse(tb)
			if err != nil {
				t.Fatal(err)
			}
			table, err := Compile(doc, legacyOpt)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			for _, line := range fx.Requests {
				r := parseFake(t, line)
				got := "(no route)"
				if rt := table.Match(r); rt != nil {
					got = fmt.Sprintf("%s [%s %s]", rt.ID, rt.Module, rt.Mode)
				}
				fmt.Fprintf(&out, "%-55s -> %s\n", line, got)
			}
			goldentest.Check(t, strings.TrimSuffix(file, ".yaml")+".golden", out.String())
		})
	}
}

// TestInvalidGolden checks that each broken table in testdata/invalid is
// refused with every problem named.
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Parse(raw)
			if err == nil {
				_, err = Compile(doc, legacyOpt)
			}
			if err == nil {
				t.Fatal("table was accepted")
			}
			var got string
			if e, ok := err.(*Error); ok {
				got = strings.Join(e.Problems, "\n") + "\n"
			} else {
				got = err.Error() + "\n"
			}
			goldentest.Check(t, strings.TrimSuffix(file, ".yaml")+".golden", got)
		})
	}
}

func TestConflictNamesBothRoutes(t *testing.T) {
	doc, err := Parse([]byte(`
modules:
  - name: a
    routes:
      - {id: first, prefix: /api/orders}
      - {id: second, prefix: "/api/orders/"}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(doc, legacyOpt)
	if err == nil || !strings.Contains(err.Error(), `"first"`) || !strings.Contains(err.Error(), `"second"`) {
		t.Fatalf("want a conflict naming both routes, got %v", err)
	}
	// A priority resolves it.
	doc.Modules[0].Routes[1].Priority = 1
	tbl, err := Compile(doc, legacyOpt)
	if err != nil {
		t.Fatal(err)
	}
	if rt := tbl.Match(&fakeRequest{method: "GET", path: "/api/orders/1"}); rt == nil || rt.ID != "second" {
		t.Fatalf("priority did not decide: %+v", rt)
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		changed  bool
		ok       bool
	}{
		{"/", "/", false, true},
		{"/api/orders", "/api/orders", false, true},
		{"/api/orders/", "/api/orders/", false, true},
		{"/a/./b", "/a/b", true, true},
		{"/a/../b", "/b", true, true},
		{"/a/b/..", "/a/", true, true},
		{"/a/b/.", "/a/b/", true, true},
		{"/..", "/", true, true},
		{"/../../x", "/x", true, true},
		{"//a///b", "/a/b", true, true},
		{"/%61pi", "/api", true, true},
		{"/api/%2e%2E/admin", "/admin", true, true},
		{"/a%2fb", "/a%2Fb", true, true},
		{"/a%2Fb", "/a%2Fb", false, true},
		{"/a%zz", "", false, false},
		{"/a%2", "", false, false},
		{"relative", "", false, false},
		{"", "", false, false},
		{"/.hidden/..x", "/.hidden/..x", false, true},
		{"/a/.../b", "/a/.../b", false, true},
	}
	for _, tt := range tests {
		got, changed, ok := NormalizePath(nil, []byte(tt.in))
		if ok != tt.ok || (ok && (string(got) != tt.want || changed != tt.changed)) {
			t.Errorf("NormalizePath(%q) = %q, %v, %v; want %q, %v, %v", tt.in, got, changed, ok, tt.want, tt.changed, tt.ok)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct {
		raw    string
		prefix bool
		want   string
	}{
		{"", false, "must not be empty"},
		{"api", false, "must start with /"},
		{"/a//b", false, "empty segment"},
		{"/a/{}", false, "parameter name"},
		{"/a/{1x}", false, "parameter name"},
		{"/a/{x", false, "does not close"},
		{"/a/x{y}", false, "mixes a parameter"},
		{"/a/{x}/{x}", false, "appears twice"},
		{"/a/..", true, "dot segment"},
		{"/a b", false, "cannot hold"},
		{"/a?b", false, "cannot hold"},
		{"/a%zz", false, "malformed percent"},
		{"/a/%2e%2e", false, "not a plain segment"},
	}
	for _, tt := range tests {
		_, err := ParsePattern(tt.raw, tt.prefix)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePattern(%q) = %v; want an error containing %q", tt.raw, err, tt.want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		raw    string
		prefix bool
		path   string
		want   bool
	}{
		{"/", false, "/", true},
		{"/", false, "/a", false},
		{"/", true, "/anything/at/all", true},
		{"/api/orders", true, "/api/orders", true},
		{"/api/orders", true, "/api/orders/", true},
		{"/api/orders", true, "/api/orders/1/2", true},
		{"/api/orders", true, "/api/ordersx", false},
		{"/api/orders", true, "/api", false},
		{"/api/{id}", false, "/api/7", true},
		{"/api/{id}", false, "/api/", false},
		{"/api/{id}", false, "/api/7/8", false},
		{"/api/", false, "/api/", true},
		{"/api/", false, "/api", false},
		{"/{a}/x", true, "/q/x/y", true},
		{"/{a}/x", true, "//x", false},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.raw, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match([]byte(tt.path)); got != tt.want {
			t.Errorf("pattern %q (prefix %v) on %q = %v, want %v", tt.raw, tt.prefix, tt.path, got, tt.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	doc, err := Parse([]byte(`
backends:
  svc: {urls: ["http://127.0.0.1:9101"]}
modules:
  - name: default
    routes: [{id: all, prefix: /}]
  - name: orders
    candidate: svc
    routes:
      - {id: o1, prefix: /api/orders}
      - {id: o2, methods: [GET], path: "/api/orders/{id}", headers: {X-Beta: "*"}}
      - {id: o3, path: "/api/orders/{id}/lines", query: {v: "2"}, cookies: {s: "*"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Compile(doc, legacyOpt)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRequest{method: "GET", host: "x", path: "/api/orders/7/lines", headers: map[string]string{}, cookies: map[string]string{}, query: url.Values{}}
	allocs := testing.AllocsPerRun(100, func() {
		if tbl.Match(r) == nil {
			t.Fatal("no match")
		}
	})
	// The fake request converts strings to bytes; the table itself must
	// add nothing. Three calls (method, host, path) plus three lookups.
	if allocs > 6 {
		t.Fatalf("Match allocates %v times per call", allocs)
	}
}

// parseTwice parses raw, writes the document as YAML and parses that: it
// returns both documents.
func parseTwice(t *testing.T, raw []byte) (doc, again *Doc) {
	t.Helper()
	doc, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	y, err := doc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err = Parse(y)
	if err != nil {
		t.Fatalf("YAML output does not parse: %v\n%s", err, y)
	}
	return doc, again
}

func TestDocRoundTrip(t *testing.T) {
	raw, err := os.ReadFile("testdata/match/precedence.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Table yaml.Node `yaml:"table"`
	}
	if err := yaml.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	tb, _ := yaml.Marshal(&fx.Table)
	doc, again := parseTwice(t, tb)
	c := doc.Clone()
	if fmt.Sprint(again) != fmt.Sprint(doc) || fmt.Sprint(c) != fmt.Sprint(doc) {
		t.Fatal("round trip changed the document")
	}
}

// BenchmarkMatch50 matches against a table of 50 routes, as the proxy
// benchmark's: the data plane's routing cost per request.
func BenchmarkMatch50(b *testing.B) {
	var y strings.Builder
	y.WriteString("backends:\n  svc: {urls: [\"http://127.0.0.1:1\"]}\nmodules:\n  - name: default\n    routes: [{id: default, prefix: /}]\n")
	for i := 1; i < 50; i++ {
		fmt.Fprintf(&y, "  - name: m%02d\n    candidate: svc\n    routes: [{id: m%02d, methods: [GET, POST], prefix: /api/m%02d}]\n", i, i, i)
	}
	doc, err := Parse([]byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := Compile(doc, legacyOpt)
	if err != nil {
		b.Fatal(err)
	}
	r := &benchRequest{method: []byte("GET"), host: []byte("shop.example.com"), path: []byte("/api/m25/items/42")}
	b.ReportAllocs()
	for b.Loop() {
		if tbl.Match(r) == nil {
			b.Fatal("no match")
		}
	}
}

// benchRequest is a Request without conversions, so that the benchmark
// measures the table only.
type benchRequest struct{ method, host, path []byte }

func (r *benchRequest) Method() []byte       { return r.method }
func (r *benchRequest) Host() []byte         { return r.host }
func (r *benchRequest) Path() []byte         { return r.path }
func (r *benchRequest) Header(string) []byte { return nil }
func (r *benchRequest) Query(string) []byte  { return nil }
func (r *benchRequest) Cookie(string) []byte { return nil }

// TestStickyAndPathRoundTrip: the sticky key's sources, path_handling and
// fallback survive YAML and JSON, as the routes file, the admin API and
// the stores carry them, and Compile applies their defaults without
// writing them into the document.
func TestStickyAndPathRoundTrip(t *testing.T) {
	raw := []byte(`
backends:
  svc: {urls: ["http://127.0.0.1:1"]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: a
    candidate: svc
    mode: canary
    weight: 10
    path_handling: as_is
    fallback: none
    sticky:
      header: X-User-Id
      cookie: session
      jwt: {claim: uid, header: X-Token, secret_env: JWT_SECRET}
      cohort_cookie: {name: side, max_age: 1h, secure: false}
    routes: [{id: a, prefix: /a}]
  - name: b
    candidate: svc
    sticky: {jwt: {}, cohort_cookie: {}}
    routes: [{id: b, prefix: /b}]
`)
	doc, fromYAML := parseTwice(t, raw)
	j, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Doc
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*Doc{"yaml": fromYAML, "json": &fromJSON, "clone": doc.Clone()} {
		if !reflect.DeepEqual(d, doc) {
			t.Fatalf("%s round trip changed the document:\n%s", name, j)
		}
	}
	tbl, err := Compile(doc, legacyOpt)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tbl.Routes[1], tbl.Routes[2]
	if !a.PathAsIs || b.PathAsIs {
		t.Fatalf("PathAsIs: a %v, b %v", a.PathAsIs, b.PathAsIs)
	}
	if a.Fallback != FallbackNone || b.Fallback != FallbackAll || doc.Module("b").Fallback != "" {
		t.Fatalf("Fallback: a %q, b %q, b's document %q", a.Fallback, b.Fallback, doc.Module("b").Fallback)
	}
	if a.Sticky.JWT.Claim != "uid" || a.Sticky.CohortCookie.Name != "side" || *a.Sticky.CohortCookie.Secure {
		t.Fatalf("module a's sticky key compiled to %+v %+v", a.Sticky.JWT, a.Sticky.CohortCookie)
	}
	if b.Sticky.JWT.Claim != DefaultJWTClaim || b.Sticky.JWT.Header != DefaultJWTHeader ||
		b.Sticky.CohortCookie.Name != DefaultCohortCookie || b.Sticky.CohortCookie.MaxAge.D() != DefaultCohortCookieMaxAge || b.Sticky.CohortCookie.Secure != nil {
		t.Fatalf("module b's defaults: %+v %+v", b.Sticky.JWT, b.Sticky.CohortCookie)
	}
	if m := doc.Module("b"); m.Sticky.JWT.Claim != "" || m.Sticky.CohortCookie.Name != "" {
		t.Fatal("Compile wrote its defaults into the document")
	}
}

// TestHasDotSegment tells a raw path with a dot segment, as some backend
// could read it, from one without.
func TestHasDotSegment(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/", false},
		{"/a/b", false},
		{"//a//b//", false},
		{"/a..b/.c/d.", false},
		{"/a/%2e%2ex", false},
		{"/a%2Fb", false},
		{"/%", false},
		{"/a/%2", false},
		{"/.", true},
		{"/..", true},
		{"/a/./b", true},
		{"/a/../b", true},
		{"/a/..", true},
		{"/a/%2e%2e/b", true},
		{"/a/%2E./b", true},
		{"/a/%2e", true},
		{"/a/..%2Fb", true},
		{"/a/..%2fb", true},
		{"/a%2F..%2Fb", true},
		{"/a/..%5Cb", true},
		{"/a\\..\\b", true},
		{"/a/...", false},
	} {
		if got := HasDotSegment([]byte(tc.path)); got != tc.want {
			t.Errorf("HasDotSegment(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// TestFallbackAllows: which methods each fallback policy lets fall back.
func TestFallbackAllows(t *testing.T) {
	for _, tc := range []struct {
		policy Fallback
		allows string // the methods allowed, of GET HEAD OPTIONS TRACE POST PUT PATCH DELETE
	}{
		{"", "GET HEAD OPTIONS TRACE POST PUT PATCH DELETE"},
		{FallbackAll, "GET HEAD OPTIONS TRACE POST PUT PATCH DELETE"},
		{FallbackSafe, "GET HEAD OPTIONS TRACE"},
		{FallbackNone, ""},
	} {
		var got []string
		for _, m := range strings.Fields("GET HEAD OPTIONS TRACE POST PUT PATCH DELETE") {
			if tc.policy.Allows([]byte(m)) {
				got = append(got, m)
			}
		}
		if strings.Join(got, " ") != tc.allows {
			t.Errorf("fallback %q allows %v, want %s", tc.policy, got, tc.allows)
		}
	}
}
