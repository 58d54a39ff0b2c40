package discover

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// Module is a proposed module: a name and the templates under its
// prefix.
type Module struct {
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Templates []Template `json:"templates"`
}

// Group sorts templates into modules by their first literal segment after
// any "api" and version segments (such as "v2"), so that
// /api/articles/{slug} is in module articles. Templates that start
// with a parameter, or are "/", are in module "root". Modules are sorted
// by name, their templates by path.
func Group(templates []Template) []Module {
	byName := map[string]*Module{}
	for _, t := range templates {
		name, prefix := moduleOf(t.Path)
		m := byName[name]
		if m == nil {
			m = &Module{Name: name, Prefix: prefix}
			byName[name] = m
		} else if m.Prefix != prefix {
			// Two prefixes with one name (/api/x and /v1/x): the module
			// has no one prefix.
			m.Prefix = "/"
		}
		m.Templates = append(m.Templates, t)
	}
	out := make([]Module, 0, len(byName))
	for _, m := range byName {
		sort.Slice(m.Templates, func(i, j int) bool { return m.Templates[i].Path < m.Templates[j].Path })
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var versionSeg = regexp.MustCompile(`^v[0-9]+$`)

// moduleOf names the module of a template path and its prefix: the first
// literal segment after any leading "api" and version segments.
func moduleOf(path string) (name, prefix string) {
	segs := splitTemplate(path)
	i := 0
	for i < len(segs)-1 && (segs[i] == "api" || versionSeg.MatchString(segs[i])) && !isParamSeg(segs[i+1]) && segs[i+1] != "" {
		i++
	}
	if len(segs) == 0 || isParamSeg(segs[i]) || segs[i] == "" {
		return "root", "/"
	}
	name = moduleName(segs[i])
	if name == "" {
		return "root", "/"
	}
	return name, "/" + strings.Join(segs[:i+1], "/")
}

func isParamSeg(s string) bool { _, ok := paramName(s); return ok }

var notNameChar = regexp.MustCompile(`[^a-z0-9._-]+`)

// moduleName makes a segment a module name as routes.Compile takes them.
func moduleName(seg string) string {
	s := notNameChar.ReplaceAllString(strings.ToLower(seg), "-")
	s = strings.Trim(s, "-._")
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// Fragment is the routes-file fragment of modules: a module each, in
// legacy mode, with an exact route per template and its methods. Route ids
// are the module's name and the template's segments, made unique.
func Fragment(modules []Module) *routes.Doc {
	doc := &routes.Doc{Modules: []routes.Module{}}
	seen := map[string]bool{}
	for _, m := range modules {
		rm := routes.Module{Name: m.Name, Routes: []routes.RouteDef{}}
		for _, t := range m.Templates {
			id := uniqueID(routeID(m.Name, strings.TrimPrefix(t.Path, m.Prefix)), seen)
			rm.Routes = append(rm.Routes, routes.RouteDef{ID: id, Methods: t.Methods, Path: t.Path})
		}
		doc.Modules = append(doc.Modules, rm)
	}
	return doc
}

var notIDChar = regexp.MustCompile(`[^A-Za-z0-9._:-]+`)

// routeID is module, then the segments of path (a template below the
// module's prefix), params by name.
func routeID(module, path string) string {
	parts := []string{module}
	for _, s := range splitTemplate(path) {
		if name, ok := paramName(s); ok {
			s = name
		}
		s = strings.Trim(notIDChar.ReplaceAllString(s, "-"), "-")
		if s != "" {
			parts = append(parts, s)
		}
	}
	id := strings.Join(parts, "-")
	if len(id) > 120 {
		id = id[:120]
	}
	return id
}

func uniqueID(id string, seen map[string]bool) string {
	out := id
	for i := 2; seen[out]; i++ {
		out = id + "-" + strconv.Itoa(i)
	}
	seen[out] = true
	return out
}
