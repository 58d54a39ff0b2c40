package routes

import (
	"errors"
	"fmt"
	"strings"
)

// segment is one part of a path pattern between slashes: a literal or a
// {param} that matches any one non-empty segment.
type segment struct {
	lit   string
	param string
}

func (s segment) isParam() bool { return s.param != "" }

// Pattern is a parsed path pattern.
type Pattern struct {
	// Raw is the pattern as written.
	Raw string
	// Prefix reports whether the pattern matches everything below it.
	Prefix bool
	segs   []segment
}

// ParsePattern parses an exact (prefix false) or prefix path pattern.
// Segments are literals or {name} parameters; an empty segment is allowed
// only at the end of an exact pattern (a trailing slash). A prefix pattern's
// trailing slash is dropped: "/api/" and "/api" are the same prefix, and "/"
// matches every path.
func ParsePattern(raw string, prefix bool) (*Pattern, error) {
	if raw == "" {
		return nil, errors.New("must not be empty")
	}
	if raw[0] != '/' {
		return nil, fmt.Errorf("must start with /, not %q", raw)
	}
	if len(raw) > 1024 {
		return nil, errors.New("must be at most 1024 bytes long")
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '\\' {
			return nil, fmt.Errorf("%q contains %q, which a path cannot hold unescaped", raw, c)
		}
	}
	p := &Pattern{Raw: raw, Prefix: prefix}
	body := raw[1:]
	if prefix {
		body = strings.TrimSuffix(body, "/")
		if body == "" {
			return p, nil
		}
	}
	parts := strings.Split(body, "/")
	names := map[string]bool{}
	for i, part := range parts {
		switch {
		case part == "":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("%q has an empty segment (//)", raw)
			}
			p.segs = append(p.segs, segment{})
		case part == "." || part == "..":
			return nil, fmt.Errorf("%q has a dot segment; patterns match normalized paths", raw)
		case part[0] == '{':
			if part[len(part)-1] != '}' {
				return nil, fmt.Errorf("%q: segment %q opens a parameter that does not close", raw, part)
			}
			name := part[1 : len(part)-1]
			if !validParamName(name) {
				return nil, fmt.Errorf("%q: parameter name %q must be letters, digits and _ and not start with a digit", raw, name)
			}
			if names[name] {
				return nil, fmt.Errorf("%q: parameter {%s} appears twice", raw, name)
			}
			names[name] = true
			p.segs = append(p.segs, segment{param: name})
		default:
			if strings.ContainsAny(part, "{}") {
				return nil, fmt.Errorf("%q: segment %q mixes a parameter with text; a parameter is a whole segment", raw, part)
			}
			lit, err := normalizeLiteral(part)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", raw, err)
			}
			p.segs = append(p.segs, segment{lit: lit})
		}
	}
	return p, nil
}

func validParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// normalizeLiteral applies to a literal segment the normalization that
// NormalizePath applies to request paths, so that "/caf%65" and "/cafe" are
// the same pattern.
func normalizeLiteral(s string) (string, error) {
	b, _, ok := NormalizePath(nil, []byte("/"+s))
	if !ok {
		return "", fmt.Errorf("segment %q has a malformed percent escape", s)
	}
	out := string(b[1:])
	if out == "" || out == "." || out == ".." || strings.Contains(out, "/") {
		return "", fmt.Errorf("segment %q is not a plain segment once normalized", s)
	}
	return out, nil
}

// String is the pattern as written.
func (p *Pattern) String() string { return p.Raw }

// Match reports whether the normalized path matches p.
func (p *Pattern) Match(path []byte) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, s := range p.segs {
		if !p.Prefix && i == len(p.segs)-1 {
			// The last segment of an exact pattern takes the rest, which
			// must hold no further slash.
			for _, c := range rest {
				if c == '/' {
					return false
				}
			}
			if s.isParam() {
				return len(rest) > 0
			}
			return string(rest) == s.lit
		}
		seg, next, more := cutSegment(rest)
		if s.isParam() {
			if len(seg) == 0 {
				return false
			}
		} else if string(seg) != s.lit {
			return false
		}
		if !more {
			// The path ends here: a prefix pattern must end too.
			return p.Prefix && i == len(p.segs)-1
		}
		rest = next
	}
	if p.Prefix {
		return true
	}
	// An exact pattern with no segments does not exist ("/" has one empty
	// segment), so this is unreachable; be strict anyway.
	return len(rest) == 0
}

// cutSegment splits off the first segment of a path without its leading
// slash. more reports whether a slash followed.
func cutSegment(p []byte) (seg, rest []byte, more bool) {
	for i, c := range p {
		if c == '/' {
			return p[:i], p[i+1:], true
		}
	}
	return p, nil, false
}

// NormalizePath appends to dst the normalized form of the request path p
// and reports whether it differs from p. It decodes percent-escapes of
// unreserved characters (RFC 3986 §6.2.2.2), merges repeated slashes and
// removes "." and ".." segments (§5.2.4), so that routing and the backend
// see the same path and "/api/%2e%2e/admin" cannot slip past a route. Other
// escapes, such as %2F, stay as they are. ok is false for a path that does
// not start with "/" or has a malformed escape.
func NormalizePath(dst, p []byte) (out []byte, changed, ok bool) {
	if len(p) == 0 || p[0] != '/' {
		return dst, false, false
	}
	if !needsNormalizing(p) {
		return append(dst, p...), false, true
	}
	start := len(dst)
	// First pass: decode unreserved escapes and merge slashes.
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return dst[:start], false, false
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) {
				dst = append(dst, d)
			} else {
				dst = append(dst, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 2
			continue
		}
		if c == '/' && len(dst) > start && dst[len(dst)-1] == '/' {
			continue
		}
		dst = append(dst, c)
	}
	// Second pass, in place: remove dot segments.
	b := dst[start:]
	w := 0
	for r := 0; r < len(b); {
		// b[r] is '/', the start of a segment.
		end := r + 1
		for end < len(b) && b[end] != '/' {
			end++
		}
		seg := b[r+1 : end]
		switch {
		case len(seg) == 1 && seg[0] == '.':
			if end == len(b) {
				b[w] = '/'
				w++
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			// Drop the last written segment.
			for w > 0 {
				w--
				if b[w] == '/' {
					break
				}
			}
			if end == len(b) {
				b[w] = '/'
				w++
			}
		default:
			w += copy(b[w:], b[r:end])
		}
		r = end
	}
	if w == 0 {
		b[0] = '/'
		w = 1
	}
	dst = dst[:start+w]
	return dst, string(dst[start:]) != string(p), true
}

func needsNormalizing(p []byte) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return true
		case '/':
			if i+1 < len(p) {
				switch p[i+1] {
				case '/':
					return true
				case '.':
					if i+2 == len(p) || p[i+2] == '/' || p[i+2] == '.' && (i+3 == len(p) || p[i+3] == '/') {
						return true
					}
				}
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func upperHex(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// HasDotSegment reports whether a raw request path has a "." or ".."
// segment as some backend could read it: with "%2e" decoded to ".", and
// with "/", "\" and their escapes "%2F" and "%5C" all taken as separators.
// A path forwarded as it was sent (path_handling: as_is) must have none,
// since the backend's own resolution of one could name a resource that
// the normalised path, the one matched, does not.
func HasDotSegment(p []byte) bool {
	dots, other := 0, false
	end := func() bool { return !other && (dots == 1 || dots == 2) }
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			switch {
			case p[i+1] == '2' && (p[i+2] == 'e' || p[i+2] == 'E'):
				c = '.'
				i += 2
			case p[i+1] == '2' && (p[i+2] == 'f' || p[i+2] == 'F'), p[i+1] == '5' && (p[i+2] == 'c' || p[i+2] == 'C'):
				c = '/'
				i += 2
			}
		}
		switch c {
		case '/', '\\':
			if end() {
				return true
			}
			dots, other = 0, false
		case '.':
			dots++
		default:
			other = true
		}
	}
	return end()
}
