// Package openapi turns an API description, OpenAPI 3.x or Swagger 2.0,
// into route table modules, so that `strangler init` can start a table for
// any monolith that ships a spec. It parses with kin-openapi and knows
// nothing of the application behind the spec.
package openapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// MaxSpecSize caps a spec read from a file or a URL.
const MaxSpecSize = 16 << 20

// FetchTimeout bounds reading a spec from a URL.
const FetchTimeout = 30 * time.Second

// Read returns the spec at src: an http(s) URL, fetched within FetchTimeout,
// or a file. Either is refused past MaxSpecSize.
func Read(ctx context.Context, src string) ([]byte, error) {
	if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return fetch(ctx, u.String())
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	return readLimited(f, src)
}

func fetch(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch spec %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json, application/yaml;q=0.9, */*;q=0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch spec: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch spec %s: status %s", u, resp.Status)
	}
	return readLimited(resp.Body, u)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec %s: %w", name, err)
	}
	if len(b) > MaxSpecSize {
		return nil, fmt.Errorf("spec %s is larger than %d bytes", name, MaxSpecSize)
	}
	return b, nil
}

// SpecError is a document that is not a valid OpenAPI 3.x or Swagger 2.0
// description.
type SpecError struct{ Err error }

func (e *SpecError) Error() string {
	return "not a valid OpenAPI 3 or Swagger 2 spec: " + e.Err.Error()
}

func (e *SpecError) Unwrap() error { return e.Err }

// Parse reads an OpenAPI 3.x or Swagger 2.0 document, in YAML or JSON. A
// Swagger 2.0 document is converted to OpenAPI 3. External references are
// not followed, so that parsing reads nothing but b. Parse checks the
// structure that routes come from (paths, operations, references); it does
// not validate schemas and examples, which many specs in use get wrong
// without harm to routing, nor refuse paths that differ only in their
// parameters' names, which Modules merges.
func Parse(b []byte) (*openapi3.T, error) {
	var head struct {
		OpenAPI string `yaml:"openapi"`
		Swagger string `yaml:"swagger"`
	}
	// JSON is YAML, so one decoder finds the version of either.
	if err := yaml.Unmarshal(b, &head); err != nil {
		return nil, &SpecError{Err: errors.New(firstLine(err.Error()))}
	}
	var doc *openapi3.T
	switch {
	case strings.HasPrefix(head.OpenAPI, "3."):
		loader := openapi3.NewLoader()
		d, err := loader.LoadFromData(b)
		if err != nil {
			return nil, &SpecError{Err: err}
		}
		doc = d
	case head.Swagger == "2.0":
		var d2 openapi2.T
		if err := openapi2.UnmarshalFromData(b, &d2); err != nil {
			return nil, &SpecError{Err: err}
		}
		d, err := openapi2conv.ToV3(&d2)
		if err != nil {
			return nil, &SpecError{Err: fmt.Errorf("convert Swagger 2.0: %w", err)}
		}
		doc = d
	case head.OpenAPI != "":
		return nil, &SpecError{Err: fmt.Errorf("openapi version %q is not 3.x", head.OpenAPI)}
	case head.Swagger != "":
		return nil, &SpecError{Err: fmt.Errorf("swagger version %q is not 2.0", head.Swagger)}
	default:
		return nil, &SpecError{Err: errors.New(`the document has neither an "openapi" nor a "swagger" version field`)}
	}
	if doc.Paths == nil || doc.Paths.Len() == 0 {
		return nil, &SpecError{Err: errors.New("the spec has no paths")}
	}
	for p := range doc.Paths.Map() {
		if !strings.HasPrefix(p, "/") {
			return nil, &SpecError{Err: fmt.Errorf("path %q does not start with /", p)}
		}
	}
	return doc, nil
}

// firstParagraph is the text up to the first blank line, on one line.
func firstParagraph(s string) string {
	para, _, _ := strings.Cut(strings.TrimSpace(s), "\n\n")
	return strings.Join(strings.Fields(para), " ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Result is what Modules makes of a spec.
type Result struct {
	// Modules are the spec's modules, in the order of the spec's tags,
	// then by name.
	Modules []routes.Module
	// Descriptions are the modules' tag descriptions, by module name.
	Descriptions map[string]string
	// Notes say where the table is broader than the spec or leaves
	// something out, such as a segment that mixes a parameter with text.
	Notes []string
}

// Modules makes one module per tag (an operation's first tag) or, for an
// operation without tags, per first path segment below the servers' base
// path. Each spec path is an exact route with the methods its operations
// take; parameters that the table's patterns cannot spell as they are
// (such as {pet-id}) are renamed, and a segment that mixes a parameter with
// text ("{name}.json") becomes a parameter.
func Modules(doc *openapi3.T) *Result {
	res := &Result{Descriptions: map[string]string{}}
	base := basePath(doc)
	type key struct{ module, path string }
	routesBy := map[key]*routes.RouteDef{}
	var order []key
	// shapes maps a pattern with its parameters unnamed to the routes of
	// that shape, which match the same requests and must not share a
	// method.
	shapes := map[string][]*routes.RouteDef{}
	paths := doc.Paths.Map()
	specPaths := make([]string, 0, len(paths))
	for p := range paths {
		specPaths = append(specPaths, p)
	}
	sort.Strings(specPaths)
	for _, sp := range specPaths {
		pattern, shape, notes := translate(base + sp)
		res.Notes = append(res.Notes, notes...)
		if _, err := routes.ParsePattern(pattern, false); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("path %s left out: %v", sp, err))
			continue
		}
		ops := paths[sp].Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, strings.ToUpper(m))
		}
		sort.Strings(methods)
		for _, m := range methods {
			op := ops[m]
			if op == nil {
				op = ops[strings.ToLower(m)]
			}
			module := ""
			if op != nil && len(op.Tags) > 0 {
				module = moduleName(op.Tags[0])
			}
			if module == "" {
				module = firstSegmentModule(sp)
			}
			if taken := methodTaken(shapes[shape], m); taken != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("%s %s left out: the route %s already takes %s requests of the same shape", m, sp, taken.Path, m))
				continue
			}
			k := key{module, pattern}
			r := routesBy[k]
			if r == nil {
				r = &routes.RouteDef{Path: pattern}
				routesBy[k] = r
				order = append(order, k)
				shapes[shape] = append(shapes[shape], r)
			}
			r.Methods = append(r.Methods, m)
		}
	}
	mods := map[string]*routes.Module{}
	for _, k := range order {
		m := mods[k.module]
		if m == nil {
			m = &routes.Module{Name: k.module}
			mods[k.module] = m
		}
		r := routesBy[k]
		sort.Strings(r.Methods)
		m.Routes = append(m.Routes, *r)
	}
	// The modules follow the spec's tag list, then the rest by name.
	rank := map[string]int{}
	for i, t := range doc.Tags {
		if t == nil {
			continue
		}
		name := moduleName(t.Name)
		if _, ok := rank[name]; !ok {
			rank[name] = i
		}
		if mods[name] != nil && t.Description != "" && res.Descriptions[name] == "" {
			res.Descriptions[name] = firstParagraph(t.Description)
		}
	}
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, iok := rank[names[i]]
		rj, jok := rank[names[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return names[i] < names[j]
	})
	ids := map[string]bool{routes.DefaultLegacy: true, "default": true}
	for _, n := range names {
		m := mods[n]
		for i := range m.Routes {
			m.Routes[i].ID = uniqueID(ids, n+"."+slug(m.Routes[i].Path))
		}
		res.Modules = append(res.Modules, *m)
	}
	return res
}

// methodTaken returns the route among rs that takes method, or nil.
func methodTaken(rs []*routes.RouteDef, method string) *routes.RouteDef {
	for _, r := range rs {
		for _, m := range r.Methods {
			if m == method {
				return r
			}
		}
	}
	return nil
}

// basePath is the path of the first server's URL, which a Swagger 2.0
// basePath becomes, without its trailing slash: the spec's paths are below
// it. A server URL with variables in its path gives none.
func basePath(doc *openapi3.T) string {
	if len(doc.Servers) == 0 || doc.Servers[0] == nil {
		return ""
	}
	u, err := url.Parse(doc.Servers[0].URL)
	if err != nil || strings.ContainsAny(u.Path, "{}") {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// translate turns a spec path into a table pattern and its shape (the
// pattern with its parameters unnamed), and notes what it changed.
func translate(p string) (pattern, shape string, notes []string) {
	if p == "" {
		p = "/"
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	used := map[string]bool{}
	out := make([]string, len(segs))
	shp := make([]string, len(segs))
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			out[i], shp[i] = s, s
			continue
		}
		raw := s
		if !(strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && strings.Count(s, "{") == 1) {
			notes = append(notes, fmt.Sprintf("path %s: segment %q mixes a parameter with text; the route takes any value there", p, s))
		}
		open := strings.IndexByte(raw, '{')
		end := strings.IndexByte(raw[open:], '}')
		name := raw[open+1:]
		if end > 0 {
			name = raw[open+1 : open+end]
		}
		out[i] = "{" + paramName(name, used) + "}"
		shp[i] = "{}"
	}
	return "/" + strings.Join(out, "/"), "/" + strings.Join(shp, "/"), notes
}

// paramName makes a spec parameter's name one that a pattern takes:
// letters, digits and _, not starting with a digit, unique in its path.
func paramName(name string, used map[string]bool) string {
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 60; i++ {
		c := name[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	n := b.String()
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		n = "p" + n
	}
	out := n
	for i := 2; used[out]; i++ {
		out = n + strconv.Itoa(i)
	}
	used[out] = true
	return out
}

// moduleName makes a tag or a path segment a module name: lower case
// letters, digits, '.', '_' and '-', other runs of characters as one '-'.
func moduleName(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			dash = b.Len() > 0
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		b.WriteRune(c)
		if b.Len() >= 56 {
			break
		}
	}
	n := strings.TrimLeft(b.String(), "._-")
	if n == "default" {
		// The catch-all module has that name.
		n = "default-api"
	}
	return n
}

// firstSegmentModule names the module of an untagged operation after its
// path's first literal segment, or "root" when the path has none.
func firstSegmentModule(p string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if first == "" || strings.ContainsAny(first, "{}") {
		return "root"
	}
	if n := moduleName(first); n != "" {
		return n
	}
	return "root"
}

// slug spells a pattern as a route ID's tail: "/api/pets/{id}" is
// "api-pets-id".
func slug(p string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(p) && b.Len() < 100; i++ {
		c := p[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteByte(c)
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "root"
	}
	return b.String()
}

func uniqueID(ids map[string]bool, id string) string {
	out := id
	for i := 2; ids[out]; i++ {
		out = id + "-" + strconv.Itoa(i)
	}
	ids[out] = true
	return out
}

// Doc is the route table of the result: its modules, then the catch-all
// module "default" (prefix /), which takes what no module takes and sends it
// to legacy. Prefix / is the least specific route, so it ranks last
// wherever it stands; it stands last so that the file reads that way too.
func (r *Result) Doc() *routes.Doc {
	d := &routes.Doc{Modules: append([]routes.Module(nil), r.Modules...)}
	d.Modules = append(d.Modules, CatchAll())
	return d
}

// CatchAll is the module that sends every request no other module takes to
// legacy.
func CatchAll() routes.Module {
	return routes.Module{Name: "default", Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}}}
}
