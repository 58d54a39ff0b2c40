package routes

import (
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/proxy/balance"
	"github.com/stranglerkit/strangler/proxy/jsondiff"
)

// Defaults for the settings a table leaves empty.
const (
	DefaultLegacy         = "legacy"
	DefaultTimeout        = 30 * time.Second
	DefaultRetries        = 1
	DefaultMaxConns       = 512
	DefaultConnectTimeout = 2 * time.Second
)

// Route is a compiled route: its match and its effective settings, with the
// module's defaults applied.
type Route struct {
	// Index is the route's position in Table.Routes, so that the data
	// plane can keep per-route state in a slice.
	Index  int
	ID     string
	Module string

	Methods  []string
	Pattern  *Pattern
	Host     string
	Headers  []Condition
	Query    []Condition
	Cookies  []Condition
	Priority int

	Mode      Mode
	Weight    int
	Legacy    string
	Candidate string
	Timeout   time.Duration
	Retries   int
	// Sticky is the module's sticky key with the defaults of its JWT and
	// cohort cookie applied.
	Sticky Sticky
	Shadow ShadowPolicy
	// PathAsIs forwards the client's path unchanged (path_handling:
	// as_is); the route was still matched on the normalised path.
	PathAsIs bool
	// Fallback is the module's fallback policy, FallbackAll unless it
	// says otherwise.
	Fallback Fallback

	methodMask   uint16
	otherMethods []string
	hostWildcard bool
	rank         rank
}

// Condition is a header, query or cookie condition. An empty Value matches
// any non-empty value.
type Condition struct {
	Name  string
	Value string
}

// ShadowPolicy is a module's shadow settings with defaults applied.
type ShadowPolicy struct {
	Writes         bool
	CompareHeaders []string
	Ignore         []jsondiff.Path
	SamplePercent  int
}

// ModuleInfo is a compiled module.
type ModuleInfo struct {
	Name      string
	Mode      Mode
	Weight    int
	Legacy    string
	Candidate string
	// Fallback is the module's fallback policy, FallbackAll unless it
	// says otherwise.
	Fallback Fallback
	Routes   []*Route
}

// BackendSpec is a compiled backend with defaults applied.
type BackendSpec struct {
	Name           string
	URLs           []*url.URL
	Service        string
	Balance        string
	PreserveHost   bool
	MaxConns       int
	ConnectTimeout time.Duration
	HealthCheck    *HealthCheck
	Outlier        Outlier
	Breaker        Breaker
	RetryBudget    RetryBudget
}

// Table is a compiled, immutable route table.
type Table struct {
	// Doc is the document the table was compiled from.
	Doc      *Doc
	Routes   []*Route
	Modules  []*ModuleInfo
	Backends map[string]*BackendSpec
	root     *node
}

// Options adds to what a document says.
type Options struct {
	// Backends are used for names the document does not define, such as
	// "legacy" from the proxy's config.
	Backends map[string]Backend
}

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	routeIDRegexp = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
)

// Compile validates d and builds its matcher. The error lists every problem,
// one per line, each named by its place in the document, such as
// "modules[orders].routes[orders-api].path: must start with /". Two routes
// that match the same requests at the same precedence are an error that
// names both.
//
// Precedence, from the first rule that tells two routes apart:
//
//  1. Path: segment by segment from the left, a literal beats a {param};
//     a pattern that goes deeper beats one that stops (for prefixes); an
//     exact path beats a prefix of the same segments.
//  2. Host: an exact host beats a wildcard, a longer wildcard beats a
//     shorter one, any host beats none.
//  3. More header, query and cookie conditions beat fewer.
//  4. A route that lists methods beats one that takes any.
//  5. The higher Priority wins.
func Compile(d *Doc, opt Options) (*Table, error) {
	c := &compiler{doc: d, t: &Table{Doc: d, Backends: map[string]*BackendSpec{}, root: &node{}}}
	c.backends(opt)
	c.modules()
	switch {
	case len(d.Modules) == 0:
		c.errf("modules", "the table has no routes, so every request would get 404; add a module with at least one route (prefix / is a catch-all)")
	case len(c.t.Routes) > MaxRoutes:
		c.errf("modules", "the table has %d routes; the limit is %d", len(c.t.Routes), MaxRoutes)
	}
	if len(c.t.Routes) <= MaxRoutes {
		// Overlaps among the valid routes are listed with the other
		// problems, so that one pass over the table finds them all.
		c.build()
	}
	if len(c.errs) > 0 {
		return nil, &Error{Problems: c.errs}
	}
	return c.t, nil
}

// MaxRoutes caps the routes of a table. Each route has its own metric
// series, so the cap also bounds the proxy's label cardinality.
const MaxRoutes = 10000

// CatchAll reports whether some route takes every request that no other
// route takes: prefix / on any host, any method, without conditions.
// Without one, a request outside the table's routes gets 404.
func (t *Table) CatchAll() bool {
	for _, r := range t.Routes {
		if r.Pattern.Prefix && len(r.Pattern.segs) == 0 && r.Host == "" && len(r.Methods) == 0 &&
			len(r.Headers) == 0 && len(r.Query) == 0 && len(r.Cookies) == 0 {
			return true
		}
	}
	return false
}

// Error lists every problem in a table.
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return "invalid route table: " + strings.Join(e.Problems, "; ") }

type compiler struct {
	doc  *Doc
	t    *Table
	errs []string
}

func (c *compiler) errf(field, format string, args ...any) {
	c.errs = append(c.errs, field+": "+fmt.Sprintf(format, args...))
}

func (c *compiler) backends(opt Options) {
	names := make([]string, 0, len(c.doc.Backends)+len(opt.Backends))
	all := map[string]Backend{}
	for n, b := range opt.Backends {
		all[n] = b
	}
	for n, b := range c.doc.Backends {
		all[n] = b
	}
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := all[n]
		field := "backends." + n
		if !namePattern.MatchString(n) {
			c.errf("backends", "name %q must be lower-case letters, digits, '.', '_' and '-'", n)
			continue
		}
		spec := &BackendSpec{Name: n, Service: b.Service, Balance: b.Balance, MaxConns: b.MaxConns, ConnectTimeout: b.ConnectTimeout.D()}
		switch {
		case len(b.URLs) == 0 && b.Service == "":
			c.errf(field, "needs urls or a service name")
		case len(b.URLs) > 0 && b.Service != "":
			c.errf(field, "has both urls and a service name; give one")
		case b.Service != "" && !namePattern.MatchString(b.Service):
			c.errf(field+".service", "%q must be lower-case letters, digits, '.', '_' and '-'", b.Service)
		}
		for i, raw := range b.URLs {
			u, err := ParseBackendURL(raw)
			if err != nil {
				c.errf(fmt.Sprintf("%s.urls[%d]", field, i), "%v", err)
				continue
			}
			spec.URLs = append(spec.URLs, u)
		}
		if spec.Balance == "" {
			spec.Balance = balance.Default
		}
		if err := balance.Check(spec.Balance); err != nil {
			c.errf(field+".balance", "%v", err)
		}
		switch b.HostHeader {
		case "", "preserve":
			spec.PreserveHost = true
		case "backend":
		default:
			c.errf(field+".host_header", "want preserve or backend, not %q", b.HostHeader)
		}
		if b.MaxConns < 0 {
			c.errf(field+".max_conns", "must not be negative")
		} else if b.MaxConns == 0 {
			spec.MaxConns = DefaultMaxConns
		}
		if b.ConnectTimeout < 0 {
			c.errf(field+".connect_timeout", "must not be negative")
		} else if b.ConnectTimeout == 0 {
			spec.ConnectTimeout = DefaultConnectTimeout
		}
		if hc := b.HealthCheck; hc != nil {
			h := *hc
			if h.Path == "" {
				h.Path = "/healthz"
			}
			if !strings.HasPrefix(h.Path, "/") {
				c.errf(field+".health_check.path", "must start with /")
			}
			if h.Interval < 0 || h.Timeout < 0 || h.UnhealthyAfter < 0 || h.HealthyAfter < 0 {
				c.errf(field+".health_check", "intervals, timeouts and counts must not be negative")
			}
			if h.Interval == 0 {
				h.Interval = Duration(5 * time.Second)
			}
			if h.Timeout == 0 {
				h.Timeout = Duration(time.Second)
			}
			if h.UnhealthyAfter == 0 {
				h.UnhealthyAfter = 2
			}
			if h.HealthyAfter == 0 {
				h.HealthyAfter = 2
			}
			spec.HealthCheck = &h
		}
		spec.Outlier = Outlier{ConsecutiveFailures: 5, Ejection: Duration(10 * time.Second), MaxEjectedPercent: 50}
		if o := b.Outlier; o != nil {
			if o.ConsecutiveFailures != 0 {
				spec.Outlier.ConsecutiveFailures = o.ConsecutiveFailures
			}
			if o.Ejection < 0 {
				c.errf(field+".outlier.ejection", "must not be negative")
			} else if o.Ejection > 0 {
				spec.Outlier.Ejection = o.Ejection
			}
			if o.MaxEjectedPercent < 0 || o.MaxEjectedPercent > 100 {
				c.errf(field+".outlier.max_ejected_percent", "must be 0 to 100")
			} else if o.MaxEjectedPercent > 0 {
				spec.Outlier.MaxEjectedPercent = o.MaxEjectedPercent
			}
		}
		spec.Breaker = Breaker{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, Interval: Duration(10 * time.Second), OpenFor: Duration(5 * time.Second), HalfOpenRequests: 1}
		if br := b.Breaker; br != nil {
			spec.Breaker.Disabled = br.Disabled
			if br.ConsecutiveFailures < 0 || br.MinRequests < 0 || br.HalfOpenRequests < 0 || br.Interval < 0 || br.OpenFor < 0 {
				c.errf(field+".breaker", "counts and durations must not be negative")
			}
			if br.FailureRatio < 0 || br.FailureRatio > 1 {
				c.errf(field+".breaker.failure_ratio", "must be between 0 and 1")
			}
			if br.ConsecutiveFailures > 0 {
				spec.Breaker.ConsecutiveFailures = br.ConsecutiveFailures
			}
			if br.FailureRatio > 0 {
				spec.Breaker.FailureRatio = br.FailureRatio
			}
			if br.MinRequests > 0 {
				spec.Breaker.MinRequests = br.MinRequests
			}
			if br.Interval > 0 {
				spec.Breaker.Interval = br.Interval
			}
			if br.OpenFor > 0 {
				spec.Breaker.OpenFor = br.OpenFor
			}
			if br.HalfOpenRequests > 0 {
				spec.Breaker.HalfOpenRequests = br.HalfOpenRequests
			}
		}
		spec.RetryBudget = RetryBudget{Ratio: 0.2, MinPerSecond: 10}
		if rb := b.RetryBudget; rb != nil {
			if rb.Ratio < 0 || rb.Ratio > 1 {
				c.errf(field+".retry_budget.ratio", "must be between 0 and 1")
			} else if rb.Ratio > 0 {
				spec.RetryBudget.Ratio = rb.Ratio
			}
			if rb.MinPerSecond < 0 {
				c.errf(field+".retry_budget.min_per_second", "must not be negative")
			} else if rb.MinPerSecond > 0 {
				spec.RetryBudget.MinPerSecond = rb.MinPerSecond
			}
		}
		c.t.Backends[n] = spec
	}
}

// ParseBackendURL checks an instance's base URL: http or https, a host, and
// no path, query, fragment or user info.
func ParseBackendURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q must be scheme://host[:port] with no path, query or user", raw)
	}
	if u.Port() != "" {
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q has an invalid port", raw)
		}
	}
	u.Path = ""
	return u, nil
}

func (c *compiler) modules() {
	seenModule := map[string]bool{}
	seenRoute := map[string]string{}
	for mi := range c.doc.Modules {
		m := &c.doc.Modules[mi]
		field := fmt.Sprintf("modules[%d]", mi)
		if m.Name != "" {
			field = "modules[" + m.Name + "]"
		}
		switch {
		case m.Name == "":
			c.errf(field+".name", "must not be empty")
		case !namePattern.MatchString(m.Name):
			c.errf(field+".name", "%q must be lower-case letters, digits, '.', '_' and '-'", m.Name)
		case seenModule[m.Name]:
			c.errf(field+".name", "module %q appears twice", m.Name)
		}
		seenModule[m.Name] = true
		info := &ModuleInfo{Name: m.Name, Mode: m.Mode, Weight: m.Weight, Legacy: m.Legacy, Candidate: m.Candidate}
		if info.Mode == "" {
			info.Mode = ModeLegacy
		}
		if info.Legacy == "" {
			info.Legacy = DefaultLegacy
		}
		c.checkMode(field, info.Mode, m.Weight)
		c.checkBackend(field+".legacy", info.Legacy)
		if m.Candidate != "" {
			c.checkBackend(field+".candidate", m.Candidate)
		}
		if info.Mode != ModeLegacy && m.Candidate == "" {
			c.errf(field+".candidate", "mode %s needs a candidate backend", info.Mode)
		}
		if m.Candidate != "" && m.Candidate == info.Legacy {
			c.errf(field+".candidate", "is the same backend as legacy (%q)", m.Candidate)
		}
		if m.Timeout < 0 {
			c.errf(field+".timeout", "must not be negative")
		}
		if m.Retries != nil && (*m.Retries < 0 || *m.Retries > 5) {
			c.errf(field+".retries", "must be 0 to 5")
		}
		sticky := c.sticky(field+".sticky", m.Sticky)
		switch m.PathHandling {
		case "", PathNormalize, PathAsIs:
		default:
			c.errf(field+".path_handling", "want normalize or as_is, not %q", m.PathHandling)
		}
		info.Fallback = m.Fallback
		switch info.Fallback {
		case "":
			info.Fallback = FallbackAll
		case FallbackAll, FallbackSafe, FallbackNone:
		default:
			c.errf(field+".fallback", "want all, safe or none, not %q", m.Fallback)
		}
		sp := ShadowPolicy{Writes: m.Shadow.Writes, SamplePercent: m.Shadow.SamplePercent}
		if sp.SamplePercent < 0 || sp.SamplePercent > 100 {
			c.errf(field+".shadow.sample_percent", "must be 0 to 100")
		}
		if sp.SamplePercent == 0 {
			sp.SamplePercent = 100
		}
		for i, h := range m.Shadow.CompareHeaders {
			if !ValidHeaderName(h) {
				c.errf(fmt.Sprintf("%s.shadow.compare_headers[%d]", field, i), "%q is not a header name", h)
				continue
			}
			sp.CompareHeaders = append(sp.CompareHeaders, textproto.CanonicalMIMEHeaderKey(h))
		}
		if len(sp.CompareHeaders) == 0 {
			sp.CompareHeaders = []string{"Content-Type"}
		}
		for i, s := range m.Shadow.Ignore {
			p, err := jsondiff.ParsePath(s)
			if err != nil {
				c.errf(fmt.Sprintf("%s.shadow.ignore[%d]", field, i), "%v", err)
				continue
			}
			sp.Ignore = append(sp.Ignore, p)
		}
		if len(m.Routes) == 0 {
			c.errf(field+".routes", "a module needs at least one route")
		}
		for ri := range m.Routes {
			r := &m.Routes[ri]
			rfield := fmt.Sprintf("%s.routes[%d]", field, ri)
			if r.ID != "" {
				rfield = field + ".routes[" + r.ID + "]"
			}
			switch {
			case r.ID == "":
				c.errf(rfield+".id", "must not be empty")
			case !routeIDRegexp.MatchString(r.ID):
				c.errf(rfield+".id", "%q must be letters, digits, '.', '_', ':' and '-'", r.ID)
			case seenRoute[r.ID] != "":
				c.errf(rfield+".id", "route %q is also in module %q; ids are unique in the table", r.ID, seenRoute[r.ID])
			}
			if r.ID != "" && seenRoute[r.ID] == "" {
				seenRoute[r.ID] = m.Name
				if m.Name == "" {
					seenRoute[r.ID] = "(unnamed)"
				}
			}
			rt := c.route(rfield, m, info, sp, sticky, r)
			if rt != nil {
				rt.Fallback = info.Fallback
				rt.Index = len(c.t.Routes)
				c.t.Routes = append(c.t.Routes, rt)
				info.Routes = append(info.Routes, rt)
			}
		}
		c.t.Modules = append(c.t.Modules, info)
	}
}

// Defaults of the sticky key's sources.
const (
	DefaultJWTClaim           = "sub"
	DefaultJWTHeader          = "Authorization"
	DefaultCohortCookie       = "strangler_cohort"
	DefaultCohortCookieMaxAge = 30 * 24 * time.Hour
)

// sticky checks a module's sticky key and returns it with the defaults
// applied, in copies that leave the document as it was written.
func (c *compiler) sticky(field string, s Sticky) Sticky {
	if s.Header != "" && !ValidHeaderName(s.Header) {
		c.errf(field+".header", "%q is not a header name", s.Header)
	}
	if s.Cookie != "" && !validToken(s.Cookie) {
		c.errf(field+".cookie", "%q is not a cookie name", s.Cookie)
	}
	if s.JWT != nil {
		j := *s.JWT
		if j.Claim == "" {
			j.Claim = DefaultJWTClaim
		}
		if len(j.Claim) > 64 {
			c.errf(field+".jwt.claim", "must be at most 64 bytes")
		}
		if j.Header == "" {
			j.Header = DefaultJWTHeader
		}
		if !ValidHeaderName(j.Header) {
			c.errf(field+".jwt.header", "%q is not a header name", j.Header)
		}
		if j.SecretFile != "" && j.SecretEnv != "" {
			c.errf(field+".jwt", "has both secret_file and secret_env; give one")
		}
		if j.SecretEnv != "" && !validToken(j.SecretEnv) {
			c.errf(field+".jwt.secret_env", "%q is not an environment variable name", j.SecretEnv)
		}
		s.JWT = &j
	}
	if s.CohortCookie != nil {
		cc := *s.CohortCookie
		if cc.Name == "" {
			cc.Name = DefaultCohortCookie
		}
		if !validToken(cc.Name) {
			c.errf(field+".cohort_cookie.name", "%q is not a cookie name", cc.Name)
		}
		if cc.MaxAge < 0 {
			c.errf(field+".cohort_cookie.max_age", "must not be negative")
		} else if cc.MaxAge == 0 {
			cc.MaxAge = Duration(DefaultCohortCookieMaxAge)
		} else if cc.MaxAge.D() < time.Second {
			c.errf(field+".cohort_cookie.max_age", "must be at least 1s")
		}
		if cc.Secure != nil {
			v := *cc.Secure
			cc.Secure = &v
		}
		s.CohortCookie = &cc
	}
	return s
}

func (c *compiler) checkMode(field string, mode Mode, weight int) {
	if !mode.Valid() {
		c.errf(field+".mode", "want legacy, shadow, canary or extracted, not %q", mode)
	}
	if weight < 0 || weight > 100 {
		c.errf(field+".weight", "must be 0 to 100, not %d", weight)
	}
	if weight != 0 && mode != ModeCanary {
		c.errf(field+".weight", "applies to canary mode only (mode is %s)", mode)
	}
}

func (c *compiler) checkBackend(field, name string) {
	if _, ok := c.t.Backends[name]; !ok {
		if _, ok := c.doc.Backends[name]; ok {
			return // already reported as invalid
		}
		c.errf(field, "backend %q is not defined", name)
	}
}

func (c *compiler) route(field string, m *Module, info *ModuleInfo, sp ShadowPolicy, sticky Sticky, r *RouteDef) *Route {
	before := len(c.errs)
	rt := &Route{
		ID: r.ID, Module: m.Name, Host: strings.ToLower(r.Host), Priority: r.Priority,
		Mode: info.Mode, Weight: m.Weight, Legacy: info.Legacy, Candidate: m.Candidate,
		Timeout: m.Timeout.D(), Sticky: sticky, Shadow: sp, Retries: DefaultRetries,
		PathAsIs: m.PathHandling == PathAsIs,
	}
	if m.Retries != nil {
		rt.Retries = *m.Retries
	}
	switch {
	case r.Path == "" && r.Prefix == "":
		c.errf(field, "needs a path or a prefix")
	case r.Path != "" && r.Prefix != "":
		c.errf(field, "has both a path and a prefix; give one")
	case r.Path != "":
		p, err := ParsePattern(r.Path, false)
		if err != nil {
			c.errf(field+".path", "%v", err)
		}
		rt.Pattern = p
	default:
		p, err := ParsePattern(r.Prefix, true)
		if err != nil {
			c.errf(field+".prefix", "%v", err)
		}
		rt.Pattern = p
	}
	seenMethod := map[string]bool{}
	for i, meth := range r.Methods {
		up := strings.ToUpper(meth)
		if !validToken(up) {
			c.errf(fmt.Sprintf("%s.methods[%d]", field, i), "%q is not a method", meth)
			continue
		}
		if seenMethod[up] {
			c.errf(fmt.Sprintf("%s.methods[%d]", field, i), "%s appears twice", up)
			continue
		}
		seenMethod[up] = true
		rt.Methods = append(rt.Methods, up)
		if bit := methodBit(up); bit != 0 {
			rt.methodMask |= bit
			if up == "GET" {
				// GET routes serve HEAD too, as every HTTP server does.
				rt.methodMask |= methodBit("HEAD")
			}
		} else {
			rt.otherMethods = append(rt.otherMethods, up)
		}
	}
	if rt.Host != "" {
		h := rt.Host
		if strings.HasPrefix(h, "*.") {
			rt.hostWildcard = true
			h = h[2:]
		}
		if !validHost(h) {
			c.errf(field+".host", "%q is not a host name (a port is not part of it)", r.Host)
		}
	}
	rt.Headers = c.conditions(field+".headers", r.Headers, true)
	rt.Query = c.conditions(field+".query", r.Query, false)
	rt.Cookies = c.conditions(field+".cookies", r.Cookies, false)
	// Route-level overrides.
	if r.Mode != "" || r.Weight != nil {
		if r.Mode != "" {
			rt.Mode = r.Mode
		}
		rt.Weight = 0
		if r.Weight != nil {
			rt.Weight = *r.Weight
		}
		c.checkMode(field, rt.Mode, rt.Weight)
	}
	if r.Legacy != "" {
		rt.Legacy = r.Legacy
		c.checkBackend(field+".legacy", r.Legacy)
	}
	if r.Candidate != "" {
		rt.Candidate = r.Candidate
		c.checkBackend(field+".candidate", r.Candidate)
	}
	if rt.Mode != ModeLegacy && rt.Candidate == "" && (r.Mode != "" || r.Candidate != "") {
		c.errf(field+".candidate", "mode %s needs a candidate backend", rt.Mode)
	}
	if (r.Candidate != "" || r.Legacy != "") && rt.Candidate != "" && rt.Candidate == rt.Legacy {
		c.errf(field+".candidate", "is the same backend as legacy (%q)", rt.Candidate)
	}
	if r.Timeout < 0 {
		c.errf(field+".timeout", "must not be negative")
	} else if r.Timeout > 0 {
		rt.Timeout = r.Timeout.D()
	}
	if rt.Timeout == 0 {
		rt.Timeout = DefaultTimeout
	}
	if r.Retries != nil {
		if *r.Retries < 0 || *r.Retries > 5 {
			c.errf(field+".retries", "must be 0 to 5")
		}
		rt.Retries = *r.Retries
	}
	if len(c.errs) > before {
		return nil
	}
	return rt
}

func (c *compiler) conditions(field string, m map[string]string, header bool) []Condition {
	if len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Condition, 0, len(m))
	for _, n := range names {
		v := m[n]
		name := n
		if header {
			if !ValidHeaderName(n) {
				c.errf(field, "%q is not a header name", n)
				continue
			}
			name = textproto.CanonicalMIMEHeaderKey(n)
		} else if n == "" {
			c.errf(field, "a name must not be empty")
			continue
		}
		if v == "" {
			c.errf(field+"."+n, "must not be empty; use \"*\" for any value")
			continue
		}
		if v == "*" {
			v = ""
		}
		out = append(out, Condition{Name: name, Value: v})
	}
	return out
}

func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// ValidHeaderName reports whether s is a header field name: an RFC 9110
// token (letters, digits and !#$%&'*+-.^_`|~) of at most 64 bytes. The
// proxy's config and the route table both check names with it, so that
// they agree.
func ValidHeaderName(s string) bool { return validToken(s) }

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// rank orders routes of the same path shape; greater wins.
type rank struct {
	host     int
	conds    int
	methods  bool
	priority int
}

func (a rank) cmp(b rank) int {
	switch {
	case a.host != b.host:
		return cmpInt(a.host, b.host)
	case a.conds != b.conds:
		return cmpInt(a.conds, b.conds)
	case a.methods != b.methods:
		if a.methods {
			return 1
		}
		return -1
	}
	return cmpInt(a.priority, b.priority)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *Route) computeRank() {
	r.rank = rank{conds: len(r.Headers) + len(r.Query) + len(r.Cookies), methods: len(r.Methods) > 0, priority: r.Priority}
	switch {
	case r.Host == "":
	case r.hostWildcard:
		r.rank.host = len(r.Host)
	default:
		r.rank.host = 1 << 20
	}
}

// build inserts every route into the trie, orders each node's lists by
// rank and refuses ties between overlapping routes.
func (c *compiler) build() {
	shapes := map[*[]*Route]bool{}
	for _, r := range c.t.Routes {
		r.computeRank()
		n := c.t.root
		for _, s := range r.Pattern.segs {
			if s.isParam() {
				if n.param == nil {
					n.param = &node{}
				}
				n = n.param
				continue
			}
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			child := n.lit[s.lit]
			if child == nil {
				child = &node{}
				n.lit[s.lit] = child
			}
			n = child
		}
		list := &n.exact
		if r.Pattern.Prefix {
			list = &n.prefix
		}
		*list = append(*list, r)
		shapes[list] = true
	}
	var conflicts []string
	for list := range shapes {
		l := *list
		sort.SliceStable(l, func(i, j int) bool {
			if c := l[i].rank.cmp(l[j].rank); c != 0 {
				return c > 0
			}
			return l[i].Index < l[j].Index
		})
		for i := 0; i < len(l); i++ {
			for j := i + 1; j < len(l) && l[i].rank.cmp(l[j].rank) == 0; j++ {
				if conditionsOverlap(l[i], l[j]) {
					conflicts = append(conflicts, fmt.Sprintf("routes %q (module %s, %s) and %q (module %s, %s) match the same requests at the same precedence; give one a higher priority or a narrower match",
						l[i].ID, l[i].Module, l[i].describe(), l[j].ID, l[j].Module, l[j].describe()))
				}
			}
		}
	}
	sort.Strings(conflicts)
	for _, s := range conflicts {
		c.errs = append(c.errs, "routes: "+s)
	}
}

func (r *Route) describe() string {
	var b strings.Builder
	if len(r.Methods) > 0 {
		b.WriteString(strings.Join(r.Methods, ","))
		b.WriteByte(' ')
	}
	if r.Pattern.Prefix {
		b.WriteString("prefix ")
	}
	b.WriteString(r.Pattern.Raw)
	if r.Host != "" {
		b.WriteString(" host " + r.Host)
	}
	return b.String()
}

// conditionsOverlap reports whether some request satisfies the method,
// host, header, query and cookie conditions of both routes. Their paths are
// of the same shape, so they overlap.
func conditionsOverlap(a, b *Route) bool {
	if len(a.Methods) > 0 && len(b.Methods) > 0 {
		common := false
		for _, m := range a.Methods {
			for _, n := range b.Methods {
				if m == n {
					common = true
				}
			}
		}
		if !common {
			return false
		}
	}
	if a.Host != "" && b.Host != "" && !hostsOverlap(a, b) {
		return false
	}
	return condsCompatible(a.Headers, b.Headers, true) && condsCompatible(a.Query, b.Query, false) && condsCompatible(a.Cookies, b.Cookies, false)
}

func hostsOverlap(a, b *Route) bool {
	switch {
	case !a.hostWildcard && !b.hostWildcard:
		return a.Host == b.Host
	case a.hostWildcard && b.hostWildcard:
		return strings.HasSuffix(a.Host[1:], b.Host[1:]) || strings.HasSuffix(b.Host[1:], a.Host[1:])
	case a.hostWildcard:
		return strings.HasSuffix(b.Host, a.Host[1:])
	default:
		return strings.HasSuffix(a.Host, b.Host[1:])
	}
}

func condsCompatible(a, b []Condition, fold bool) bool {
	for _, x := range a {
		for _, y := range b {
			same := x.Name == y.Name
			if fold {
				same = strings.EqualFold(x.Name, y.Name)
			}
			if same && x.Value != "" && y.Value != "" && x.Value != y.Value {
				return false
			}
		}
	}
	return true
}

// node is a trie node: one path segment.
type node struct {
	lit    map[string]*node
	param  *node
	exact  []*Route
	prefix []*Route
}
