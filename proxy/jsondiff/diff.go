package jsondiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Difference is one place where two documents disagree.
type Difference struct {
	// Path locates the difference, such as $.items[0].price.
	Path string `json:"path"`
	// Legacy and Candidate are the two values as compact JSON, cut at
	// MaxValueLen; "(absent)" when the member or element is missing.
	Legacy    string `json:"legacy"`
	Candidate string `json:"candidate"`
}

func (d Difference) String() string {
	return d.Path + ": " + d.Legacy + " → " + d.Candidate
}

// Absent stands for a member or element that one side does not have.
const Absent = "(absent)"

// MaxValueLen caps each rendered value in a Difference.
const MaxValueLen = 200

// MaxDifferences caps how many differences Compare lists; a document that
// differs everywhere gets one more line that says how many were left out.
const MaxDifferences = 50

// Decode parses a JSON document, keeping numbers exact.
func Decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

// Redacted stands for a value that Compare hides because it is secret.
const Redacted = "(redacted)"

// Options tunes Compare.
type Options struct {
	// Ignore leaves these paths, and everything under them, out.
	Ignore []Path
	// Noise leaves out differences whose generalized path (see
	// Generalize) is in the set.
	Noise map[string]bool
	// Redact, if set, hides secret values in the differences Compare
	// renders; the comparison still sees them.
	Redact *Redact
}

// Redact says which values of a document are secret. A difference at a
// secret location, or inside one, shows Redacted for its values, and a
// secret member inside a rendered object or array shows "(redacted)".
type Redact struct {
	// Names reports whether a member holds a secret by its name, such
	// as password or email. If nil, no name does.
	Names func(name string) bool
	// Paths are the locations that hold secrets, with everything under
	// them. If empty, none.
	Paths []Path
}

// secret reports whether loc, or a member or location above it, is secret.
func (r *Redact) secret(loc []elem) bool {
	for k := range loc {
		if !loc[k].isIndex && r.Names != nil && r.Names(loc[k].name) {
			return true
		}
	}
	for _, p := range r.Paths {
		for k := 0; k <= len(loc); k++ {
			if p.matches(loc[:k]) {
				return true
			}
		}
	}
	return false
}

// hide returns a copy of v, at loc, with its secret members replaced.
func (r *Redact) hide(loc []elem, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			child := append(loc[:len(loc):len(loc)], elem{name: k})
			if r.secret(child) {
				out[k] = Redacted
			} else {
				out[k] = r.hide(child, y)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = r.hide(append(loc[:len(loc):len(loc)], elem{index: i, isIndex: true}), y)
		}
		return out
	}
	return v
}

// Compare lists the differences between a and b, documents from Decode,
// in a stable order.
func Compare(a, b any, opt Options) []Difference {
	c := comparer{opt: opt}
	c.walk(nil, a, b)
	if c.dropped > 0 {
		c.out = append(c.out, Difference{Path: "…", Legacy: strconv.Itoa(c.dropped) + " more differences", Candidate: ""})
	}
	return c.out
}

type comparer struct {
	opt     Options
	out     []Difference
	dropped int
}

func (c *comparer) ignored(loc []elem) bool {
	for _, p := range c.opt.Ignore {
		if p.matches(loc) {
			return true
		}
	}
	if len(c.opt.Noise) > 0 && c.opt.Noise[generalize(loc)] {
		return true
	}
	return false
}

// add lists a difference at loc between a and b, nil for an absent side.
func (c *comparer) add(loc []elem, a, b any) {
	if len(c.out) >= MaxDifferences {
		c.dropped++
		return
	}
	c.out = append(c.out, Difference{Path: formatLoc(loc), Legacy: c.render(loc, a), Candidate: c.render(loc, b)})
}

// absent marks the missing side of a difference for add.
type absent struct{}

// render renders one side of a difference at loc, redacted as the
// options say.
func (c *comparer) render(loc []elem, v any) string {
	if _, ok := v.(absent); ok {
		return Absent
	}
	if r := c.opt.Redact; r != nil {
		if r.secret(loc) {
			return Redacted
		}
		v = r.hide(loc, v)
	}
	return render(v)
}

func (c *comparer) walk(loc []elem, a, b any) {
	if c.ignored(loc) {
		return
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			c.add(loc, a, b)
			return
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			child := append(loc[:len(loc):len(loc)], elem{name: k})
			x, inA := av[k]
			y, inB := bv[k]
			switch {
			case inA && inB:
				c.walk(child, x, y)
			case inA:
				if !c.ignored(child) {
					c.add(child, x, absent{})
				}
			default:
				if !c.ignored(child) {
					c.add(child, absent{}, y)
				}
			}
		}
	case []any:
		bv, ok := b.([]any)
		if !ok {
			c.add(loc, a, b)
			return
		}
		for i := 0; i < max(len(av), len(bv)); i++ {
			child := append(loc[:len(loc):len(loc)], elem{index: i, isIndex: true})
			switch {
			case i < len(av) && i < len(bv):
				c.walk(child, av[i], bv[i])
			case i < len(av):
				if !c.ignored(child) {
					c.add(child, av[i], absent{})
				}
			default:
				if !c.ignored(child) {
					c.add(child, absent{}, bv[i])
				}
			}
		}
	case json.Number:
		bv, ok := b.(json.Number)
		if !ok || !sameNumber(av, bv) {
			c.add(loc, a, b)
		}
	default:
		// Strings, booleans and null compare by value.
		if a != b {
			c.add(loc, a, b)
		}
	}
}

// sameNumber compares numbers by value, so that 12.5 and 12.50 agree.
func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	if ai, err := a.Int64(); err == nil {
		if bi, err := b.Int64(); err == nil {
			return ai == bi
		}
	}
	af, err1 := a.Float64()
	bf, err2 := b.Float64()
	return err1 == nil && err2 == nil && af == bf
}

func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > MaxValueLen {
		s = s[:MaxValueLen] + "…"
	}
	return s
}

// Locations lists the generalized paths where a and b differ, outside the
// ignored ones, for noise learning: differences between two legacy answers
// to the same request are noise, such as timestamps or request IDs.
func Locations(a, b any, opt Options) []string {
	c := comparer{opt: opt}
	c.walk(nil, a, b)
	seen := map[string]bool{}
	var out []string
	for _, d := range c.out {
		g := GeneralizeString(d.Path)
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// generalize renders loc with every index replaced by [*], so that noise
// learned on one element applies to all of them.
func generalize(loc []elem) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, e := range loc {
		if e.isIndex {
			b.WriteString("[*]")
			continue
		}
		if simpleName(e.name) {
			b.WriteByte('.')
			b.WriteString(e.name)
		} else {
			b.WriteString("['")
			b.WriteString(e.name)
			b.WriteString("']")
		}
	}
	return b.String()
}

// GeneralizeString replaces the indexes of a path that Compare produced
// with [*].
func GeneralizeString(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' && i+1 < len(path) && path[i+1] >= '0' && path[i+1] <= '9' {
			j := strings.IndexByte(path[i:], ']')
			if j > 0 {
				b.WriteString("[*]")
				i += j
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}
