package discover

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Sample is a template as counted: how many requests had it, and with
// which methods.
type Sample struct {
	Template string
	Count    int64
	Methods  []string
}

// Options tune Merge.
type Options struct {
	// Threshold is how many distinct literal values one position (below
	// one parent) may have before they merge into one {param}. If zero,
	// DefaultThreshold.
	Threshold int
	// MinCount leaves out the merged templates with fewer requests. If
	// zero, every template is kept.
	MinCount int64
}

// DefaultThreshold is Options.Threshold's default: more distinct values
// at one position than an API has resources below one path.
const DefaultThreshold = 8

// Template is a merged template: a path pattern with {param} segments, the
// requests it stands for and their methods, sorted.
type Template struct {
	Path    string   `json:"path"`
	Count   int64    `json:"count"`
	Methods []string `json:"methods"`
}

// node is a position in the tree of templates: its literal children by
// value, its one parameter child, and the requests that ended there.
type node struct {
	lits    map[string]*node
	param   *node
	pname   string
	pcount  map[string]int64 // requests by the names the param had
	count   int64
	methods map[string]bool
}

func newNode() *node { return &node{lits: map[string]*node{}, methods: map[string]bool{}} }

// Merge merges samples into templates: each position whose literal values
// below one parent number more than the threshold becomes one {param}
// (named slug when the values look like words joined by '-', else name),
// a position with both a parameter and such values keeps one parameter,
// and the counts and methods of what merged add up. Templates are sorted
// by path; parameter names repeated in one path get a number.
func Merge(samples []Sample, opt Options) []Template {
	if opt.Threshold <= 0 {
		opt.Threshold = DefaultThreshold
	}
	root := newNode()
	for _, s := range samples {
		root.add(splitTemplate(s.Template), s.Count, s.Methods)
	}
	root.merge(opt.Threshold)
	var out []Template
	root.collect("", nil, func(path string, n *node) {
		if n.count == 0 || n.count < opt.MinCount {
			return
		}
		out = append(out, Template{Path: path, Count: n.count, Methods: sortedMethods(n.methods)})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// splitTemplate returns the segments of a template; "/" has none.
func splitTemplate(t string) []string {
	t = strings.TrimPrefix(t, "/")
	if t == "" {
		return nil
	}
	return strings.Split(t, "/")
}

func paramName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

func (n *node) add(segs []string, count int64, methods []string) {
	if len(segs) == 0 {
		n.count += count
		for _, m := range methods {
			n.methods[m] = true
		}
		return
	}
	seg := segs[0]
	if name, ok := paramName(seg); ok {
		if n.param == nil {
			n.param, n.pcount = newNode(), map[string]int64{}
		}
		n.pcount[name] += count
		n.param.add(segs[1:], count, methods)
		return
	}
	c := n.lits[seg]
	if c == nil {
		c = newNode()
		n.lits[seg] = c
	}
	c.add(segs[1:], count, methods)
}

// absorb adds the subtree o into n.
func (n *node) absorb(o *node) {
	n.count += o.count
	for m := range o.methods {
		n.methods[m] = true
	}
	for k, c := range o.lits {
		if mine := n.lits[k]; mine != nil {
			mine.absorb(c)
		} else {
			n.lits[k] = c
		}
	}
	if o.param != nil {
		if n.param == nil {
			n.param, n.pcount = o.param, o.pcount
		} else {
			n.param.absorb(o.param)
			for k, v := range o.pcount {
				n.pcount[k] += v
			}
		}
	}
}

func (n *node) total() int64 {
	t := n.count
	for _, c := range n.lits {
		t += c.total()
	}
	if n.param != nil {
		t += n.param.total()
	}
	return t
}

// merge applies the threshold from n down.
func (n *node) merge(threshold int) {
	if len(n.lits) > threshold {
		slugs := true
		if n.param == nil {
			n.param, n.pcount = newNode(), map[string]int64{}
		}
		for k, c := range n.lits {
			slugs = slugs && strings.Contains(k, "-")
			name := "name"
			if isDigits([]byte(k)) {
				name = ParamID
			}
			n.pcount[name] += c.total()
			n.param.absorb(c)
		}
		if slugs {
			n.pcount = map[string]int64{ParamSlug: n.param.total()}
		}
		n.lits = map[string]*node{}
	}
	for _, c := range n.lits {
		c.merge(threshold)
	}
	if n.param != nil {
		n.pname = topName(n.pcount)
		n.param.merge(threshold)
	}
}

// topName is the name most requests had, the first by name on a tie.
func topName(counts map[string]int64) string {
	best, bestN := "", int64(-1)
	for k, v := range counts {
		if v > bestN || v == bestN && k < best {
			best, bestN = k, v
		}
	}
	return best
}

// collect calls f with each node's path, numbering parameter names that
// repeat in one path.
func (n *node) collect(prefix string, names map[string]int, f func(string, *node)) {
	path := prefix
	if path == "" {
		path = "/"
	}
	f(path, n)
	for k, c := range n.lits {
		c.collect(prefix+"/"+k, names, f)
	}
	if n.param != nil {
		next := map[string]int{}
		for k, v := range names {
			next[k] = v
		}
		name := n.pname
		next[name]++
		if k := next[name]; k > 1 {
			name += strconv.Itoa(k)
		}
		n.param.collect(prefix+"/{"+name+"}", next, f)
	}
}

// methodOrder is the order methods are listed in.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func sortedMethods(set map[string]bool) []string {
	out := []string{}
	for _, m := range methodOrder {
		if set[m] {
			out = append(out, m)
		}
	}
	var other []string
	for m := range set {
		if !slices.Contains(methodOrder, m) {
			other = append(other, m)
		}
	}
	sort.Strings(other)
	return append(out, other...)
}
