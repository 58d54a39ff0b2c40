package routes

import "bytes"

// Request is what matching reads from a request. Implementations return
// nil for what is absent; the slices are only read during Match.
type Request interface {
	// Method is the request method, upper case.
	Method() []byte
	// Host is the Host header, possibly with a port.
	Host() []byte
	// Path is the path as NormalizePath returns it.
	Path() []byte
	// Header returns the value of a header, by canonical name.
	Header(name string) []byte
	// Query returns the value of a query parameter.
	Query(name string) []byte
	// Cookie returns the value of a cookie.
	Cookie(name string) []byte
}

// Match returns the route that serves r, or nil. It does not allocate.
func (t *Table) Match(r Request) *Route {
	path := r.Path()
	if len(path) == 0 || path[0] != '/' {
		return nil
	}
	return t.walk(t.root, path[1:], false, r)
}

// walk visits the routes that match the path in precedence order and
// returns the first whose other conditions hold: at each segment the literal
// child first, then the parameter child, then the prefixes that end here.
func (t *Table) walk(n *node, rest []byte, done bool, r Request) *Route {
	if done {
		if rt := pick(n.exact, r); rt != nil {
			return rt
		}
		return pick(n.prefix, r)
	}
	seg, next, more := cutSegment(rest)
	if n.lit != nil {
		if child := n.lit[string(seg)]; child != nil {
			if rt := t.walk(child, next, !more, r); rt != nil {
				return rt
			}
		}
	}
	if n.param != nil && len(seg) > 0 {
		if rt := t.walk(n.param, next, !more, r); rt != nil {
			return rt
		}
	}
	return pick(n.prefix, r)
}

func pick(list []*Route, r Request) *Route {
	for _, rt := range list {
		if rt.matchesConditions(r) {
			return rt
		}
	}
	return nil
}

func (rt *Route) matchesConditions(r Request) bool {
	if len(rt.Methods) > 0 && !rt.matchesMethod(r.Method()) {
		return false
	}
	if rt.Host != "" && !rt.matchesHost(r.Host()) {
		return false
	}
	for _, c := range rt.Headers {
		if !c.holds(r.Header(c.Name)) {
			return false
		}
	}
	for _, c := range rt.Query {
		if !c.holds(r.Query(c.Name)) {
			return false
		}
	}
	for _, c := range rt.Cookies {
		if !c.holds(r.Cookie(c.Name)) {
			return false
		}
	}
	return true
}

func (c Condition) holds(v []byte) bool {
	if c.Value == "" {
		return len(v) > 0
	}
	return string(v) == c.Value
}

func (rt *Route) matchesMethod(m []byte) bool {
	if bit := methodBitBytes(m); bit != 0 {
		return rt.methodMask&bit != 0
	}
	for _, o := range rt.otherMethods {
		if string(m) == o {
			return true
		}
	}
	return false
}

func (rt *Route) matchesHost(h []byte) bool {
	h = stripPort(h)
	// "shop.example.com." is the fully qualified form of the same host;
	// without this it would slip past the route for it.
	if n := len(h); n > 1 && h[n-1] == '.' {
		h = h[:n-1]
	}
	if rt.hostWildcard {
		suffix := rt.Host[1:] // ".example.com"
		return len(h) > len(suffix) && bytes.EqualFold(h[len(h)-len(suffix):], []byte(suffix))
	}
	return len(h) == len(rt.Host) && bytes.EqualFold(h, []byte(rt.Host))
}

// stripPort removes a :port from a Host header, keeping IPv6 brackets.
func stripPort(h []byte) []byte {
	for i := len(h) - 1; i >= 0; i-- {
		switch h[i] {
		case ':':
			return h[:i]
		case ']':
			return h
		}
		if h[i] < '0' || h[i] > '9' {
			return h
		}
	}
	return h
}

var methodBits = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}

func methodBit(m string) uint16 {
	for i, s := range methodBits {
		if s == m {
			return 1 << i
		}
	}
	return 0
}

func methodBitBytes(m []byte) uint16 {
	for i, s := range methodBits {
		if string(m) == s {
			return 1 << i
		}
	}
	return 0
}

// IsIdempotent reports whether a method is idempotent (RFC 9110 §9.2.2),
// so that a request may be sent again.
func IsIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// IsSafe reports whether a method is safe (RFC 9110 §9.2.1): it asks for
// no change, so a copy may be sent to a shadow.
func IsSafe(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}
