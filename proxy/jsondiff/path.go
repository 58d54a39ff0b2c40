// Package jsondiff compares two JSON documents and lists their differences
// as readable lines keyed by JSON path. The shadow comparison uses it, with
// ignore paths from the route table and noise learned from legacy answers.
package jsondiff

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Path is a parsed JSON path such as $.items[*].price or $..updated_at.
// It supports the root $, .name and ['name'] members, [n] indexes, [*] and
// .* wildcards, and .. descent into any depth.
type Path struct {
	raw   string
	steps []step
}

type stepKind uint8

const (
	stepField stepKind = iota
	stepIndex
	stepAny     // .* or [*]: any member or element
	stepDescend // ..: zero or more levels
)

type step struct {
	kind  stepKind
	name  string
	index int
}

// String returns the path as written.
func (p Path) String() string { return p.raw }

// ParsePath parses a JSON path.
func ParsePath(s string) (Path, error) {
	p := Path{raw: s}
	if !strings.HasPrefix(s, "$") {
		return p, fmt.Errorf("JSON path %q must start with $", s)
	}
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			if i+1 < len(s) && s[i+1] == '.' {
				p.steps = append(p.steps, step{kind: stepDescend})
				i += 2
				if i < len(s) && s[i] == '[' {
					continue
				}
			} else {
				i++
			}
			if i < len(s) && s[i] == '*' {
				p.steps = append(p.steps, step{kind: stepAny})
				i++
				continue
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			if j == i {
				return p, fmt.Errorf("JSON path %q has an empty member name at offset %d", s, i)
			}
			p.steps = append(p.steps, step{kind: stepField, name: s[i:j]})
			i = j
		case '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return p, fmt.Errorf("JSON path %q has an unclosed [", s)
			}
			inner := s[i+1 : i+j]
			i += j + 1
			switch {
			case inner == "*":
				p.steps = append(p.steps, step{kind: stepAny})
			case len(inner) >= 2 && (inner[0] == '\'' && inner[len(inner)-1] == '\'' || inner[0] == '"' && inner[len(inner)-1] == '"'):
				p.steps = append(p.steps, step{kind: stepField, name: inner[1 : len(inner)-1]})
			default:
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return p, fmt.Errorf("JSON path %q: [%s] is not an index, a quoted name or *", s, inner)
				}
				p.steps = append(p.steps, step{kind: stepIndex, index: n})
			}
		default:
			return p, fmt.Errorf("JSON path %q: unexpected %q at offset %d", s, s[i], i)
		}
	}
	if len(p.steps) > 0 && p.steps[len(p.steps)-1].kind == stepDescend {
		return p, errors.New("JSON path " + strconv.Quote(s) + " ends with ..")
	}
	return p, nil
}

// elem is one step of a concrete location in a document.
type elem struct {
	name    string
	index   int
	isIndex bool
}

// matches reports whether the concrete location loc is selected by p.
func (p Path) matches(loc []elem) bool { return matchSteps(p.steps, loc) }

func matchSteps(steps []step, loc []elem) bool {
	if len(steps) == 0 {
		return len(loc) == 0
	}
	s := steps[0]
	if s.kind == stepDescend {
		for k := 0; k <= len(loc); k++ {
			if matchSteps(steps[1:], loc[k:]) {
				return true
			}
		}
		return false
	}
	if len(loc) == 0 {
		return false
	}
	e := loc[0]
	switch s.kind {
	case stepField:
		if e.isIndex || e.name != s.name {
			return false
		}
	case stepIndex:
		if !e.isIndex || e.index != s.index {
			return false
		}
	}
	return matchSteps(steps[1:], loc[1:])
}

// formatLoc renders a concrete location as a JSON path.
func formatLoc(loc []elem) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, e := range loc {
		if e.isIndex {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
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

func simpleName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
