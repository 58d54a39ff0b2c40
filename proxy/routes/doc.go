// Package routes is the proxy's route table: the document that operators
// write (a routes file or a PUT to the admin API), its validation, and the
// compiled matcher that the data plane runs for every request.
//
// A table groups routes by module. Each module names a legacy backend and a
// candidate backend (the extracted service) and a mode that says which of
// them serves its routes. Routes match on method, path pattern, host, and
// header, query and cookie conditions; when several match a request the most
// specific wins, then the one with the higher priority (see Compile).
package routes

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mode says which backend serves a module's routes.
type Mode string

// The modes a module moves through while it is extracted.
const (
	// ModeLegacy sends every request to the legacy backend.
	ModeLegacy Mode = "legacy"
	// ModeShadow answers from legacy and sends a copy to the candidate,
	// whose answer is compared and thrown away.
	ModeShadow Mode = "shadow"
	// ModeCanary sends a sticky share of users (Weight percent) to the
	// candidate and the rest to legacy.
	ModeCanary Mode = "canary"
	// ModeExtracted sends every request to the candidate, with legacy as
	// the fallback.
	ModeExtracted Mode = "extracted"
)

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool {
	switch m {
	case ModeLegacy, ModeShadow, ModeCanary, ModeExtracted:
		return true
	}
	return false
}

// Doc is a route table as written: in a routes file (YAML), in the admin
// API (JSON) and in the persisted state. It keeps what the operator wrote;
// Compile applies the defaults.
type Doc struct {
	// Backends names the upstreams that modules refer to.
	Backends map[string]Backend `yaml:"backends,omitempty" json:"backends,omitempty"`
	// Modules lists the modules and their routes.
	Modules []Module `yaml:"modules" json:"modules"`
}

// Backend is an upstream: a static list of URLs or a service name that
// instances register under through the admin API.
type Backend struct {
	// URLs are the instances' base URLs, http:// or https://, with no path.
	URLs []string `yaml:"urls,omitempty" json:"urls,omitempty"`
	// Service is a name in the proxy's service registry; instances
	// register themselves with a TTL heartbeat. Exactly one of URLs and
	// Service is set.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// Balance names the policy that spreads requests over instances, one
	// of the balance package's registry: round_robin or least_requests.
	// If empty, round_robin.
	Balance string `yaml:"balance,omitempty" json:"balance,omitempty"`
	// HostHeader is preserve (send the client's Host) or backend (send the
	// instance's host:port). If empty, preserve.
	HostHeader string `yaml:"host_header,omitempty" json:"host_header,omitempty"`
	// MaxConns caps connections per instance. If zero, 512.
	MaxConns int `yaml:"max_conns,omitempty" json:"max_conns,omitempty"`
	// ConnectTimeout bounds dialing an instance. If zero, 2s.
	ConnectTimeout Duration `yaml:"connect_timeout,omitempty" json:"connect_timeout,omitempty"`
	// HealthCheck probes instances actively. If nil, there is none and
	// only passive outlier ejection takes instances out.
	HealthCheck *HealthCheck `yaml:"health_check,omitempty" json:"health_check,omitempty"`
	// Outlier ejects instances that fail in a row. If nil, the defaults of
	// Outlier apply.
	Outlier *Outlier `yaml:"outlier,omitempty" json:"outlier,omitempty"`
	// Breaker is the backend's circuit breaker. If nil, the defaults of
	// Breaker apply.
	Breaker *Breaker `yaml:"breaker,omitempty" json:"breaker,omitempty"`
	// RetryBudget bounds retries to this backend. If nil, the defaults of
	// RetryBudget apply.
	RetryBudget *RetryBudget `yaml:"retry_budget,omitempty" json:"retry_budget,omitempty"`
}

// HealthCheck is an active probe of each instance.
type HealthCheck struct {
	// Path is requested with GET; a 2xx or 3xx answer is healthy. If
	// empty, /healthz.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Interval between probes. If zero, 5s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout of one probe. If zero, 1s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// UnhealthyAfter failed probes in a row take an instance out. If zero, 2.
	UnhealthyAfter int `yaml:"unhealthy_after,omitempty" json:"unhealthy_after,omitempty"`
	// HealthyAfter passed probes in a row bring it back. If zero, 2.
	HealthyAfter int `yaml:"healthy_after,omitempty" json:"healthy_after,omitempty"`
}

// Outlier configures passive ejection: an instance that fails requests in a
// row (connection errors, 502, 503, 504) is taken out for a while.
type Outlier struct {
	// ConsecutiveFailures ejects an instance. If zero, 5; negative
	// disables ejection.
	ConsecutiveFailures int `yaml:"consecutive_failures,omitempty" json:"consecutive_failures,omitempty"`
	// Ejection is how long the first ejection lasts; each ejection in a
	// row doubles it, up to ten times. If zero, 10s.
	Ejection Duration `yaml:"ejection,omitempty" json:"ejection,omitempty"`
	// MaxEjectedPercent keeps at least some instances in. If zero, 50.
	MaxEjectedPercent int `yaml:"max_ejected_percent,omitempty" json:"max_ejected_percent,omitempty"`
}

// Breaker configures a backend's circuit breaker. It counts connection
// errors, timeouts, 502, 503 and 504 as failures.
type Breaker struct {
	// Disabled turns the breaker off.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// ConsecutiveFailures opens the breaker. If zero, 5.
	ConsecutiveFailures int `yaml:"consecutive_failures,omitempty" json:"consecutive_failures,omitempty"`
	// FailureRatio opens the breaker when at least MinRequests were seen
	// in the interval. If zero, 0.5.
	FailureRatio float64 `yaml:"failure_ratio,omitempty" json:"failure_ratio,omitempty"`
	// MinRequests before FailureRatio applies. If zero, 20.
	MinRequests int `yaml:"min_requests,omitempty" json:"min_requests,omitempty"`
	// Interval clears the counts while closed. If zero, 10s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// OpenFor is how long the breaker stays open before it lets probe
	// requests through. If zero, 5s.
	OpenFor Duration `yaml:"open_for,omitempty" json:"open_for,omitempty"`
	// HalfOpenRequests are let through while half-open. If zero, 1.
	HalfOpenRequests int `yaml:"half_open_requests,omitempty" json:"half_open_requests,omitempty"`
}

// RetryBudget caps retries to a share of requests, so that retries cannot
// multiply the load on a backend that is already failing.
type RetryBudget struct {
	// Ratio of retries to requests. If zero, 0.2.
	Ratio float64 `yaml:"ratio,omitempty" json:"ratio,omitempty"`
	// MinPerSecond retries are always allowed. If zero, 10.
	MinPerSecond int `yaml:"min_per_second,omitempty" json:"min_per_second,omitempty"`
}

// Module is a part of the monolith that moves as one: its routes share the
// backends and the mode, and the admin API flips them together.
type Module struct {
	// Name identifies the module in the admin API and the CLI.
	Name string `yaml:"name" json:"name"`
	// Mode says who serves the routes. If empty, legacy.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Weight is the percentage of users sent to the candidate in canary
	// mode, 0 to 100.
	Weight int `yaml:"weight,omitempty" json:"weight,omitempty"`
	// Legacy names the monolith's backend. If empty, "legacy".
	Legacy string `yaml:"legacy,omitempty" json:"legacy,omitempty"`
	// Candidate names the extracted service's backend. Every mode but
	// legacy needs it.
	Candidate string `yaml:"candidate,omitempty" json:"candidate,omitempty"`
	// Sticky names the key that keeps a user on one side of a canary.
	Sticky Sticky `yaml:"sticky,omitempty" json:"sticky,omitzero"`
	// Timeout is how long the proxy waits for a backend to send the next
	// bytes of its answer, like nginx's proxy_read_timeout. If zero, 30s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Retries is how many times an idempotent request is retried on
	// another instance after a connection error, 502, 503 or 504. If nil,
	// 1; 0 turns retries off.
	Retries *int `yaml:"retries,omitempty" json:"retries,omitempty"`
	// Shadow configures the shadow copies and their comparison.
	Shadow Shadow `yaml:"shadow,omitempty" json:"shadow,omitzero"`
	// PathHandling is normalize or as_is: which path the backends
	// receive (see PathHandling). If empty, normalize.
	PathHandling PathHandling `yaml:"path_handling,omitempty" json:"path_handling,omitempty"`
	// Fallback says which requests legacy serves when the candidate
	// cannot take them (see Fallback). If empty, all.
	Fallback Fallback `yaml:"fallback,omitempty" json:"fallback,omitempty"`
	// Routes are the module's routes.
	Routes []RouteDef `yaml:"routes" json:"routes"`
}

// Sticky names the canary key, the value hashed to put a user on one side
// of a canary. The sources are tried in this order, and the first that
// gives a non-empty value is the key:
//
//  1. the signed cohort cookie (CohortCookie), when set and its signature
//     holds;
//  2. the request header Header;
//  3. the JWT claim (JWT);
//  4. the cookie Cookie;
//  5. the client's IP address, the last resort.
//
// The zero Sticky keys on the client's address alone.
type Sticky struct {
	// Header is a request header whose value is the key, such as
	// X-User-Id. If empty, none.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// Cookie is a request cookie whose value is the key, such as a
	// session cookie. If empty, none.
	Cookie string `yaml:"cookie,omitempty" json:"cookie,omitempty"`
	// JWT takes the key from a claim of a JSON Web Token, such as sub of a
	// bearer token. If nil, none.
	JWT *StickyJWT `yaml:"jwt,omitempty" json:"jwt,omitempty"`
	// CohortCookie makes the proxy set a signed cookie that holds the key
	// it used on a user's first request, and use it first on the later
	// ones, so that a user keeps their side when they log in (the header
	// or JWT appears) or their address changes. If nil, none.
	CohortCookie *CohortCookie `yaml:"cohort_cookie,omitempty" json:"cohort_cookie,omitempty"`
}

// StickyJWT takes the canary key from a claim of a JSON Web Token. A token
// that is malformed, larger than 8 KiB, signed with alg "none", expired or
// not yet valid gives no key, and the next source is tried. Without a
// secret the signature is not checked: the claim then says who the client
// claims to be, which is enough to pick a side, never to trust.
type StickyJWT struct {
	// Claim names the claim whose value, a string or a number, is the key.
	// If empty, "sub".
	Claim string `yaml:"claim,omitempty" json:"claim,omitempty"`
	// Header carries the token: "Bearer <token>" or the bare token. If
	// empty, Authorization.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// SecretFile is a file that holds the HMAC secret (HS256, HS384,
	// HS512) the token's signature is checked with; a token whose
	// signature does not hold gives no key. A file that cannot be read
	// makes every token give none, and is logged. If empty, SecretEnv.
	SecretFile string `yaml:"secret_file,omitempty" json:"secret_file,omitempty"`
	// SecretEnv names an environment variable of the proxy that holds the
	// HMAC secret, as SecretFile does. At most one of SecretFile and
	// SecretEnv is set. If both are empty, the signature is not checked.
	SecretEnv string `yaml:"secret_env,omitempty" json:"secret_env,omitempty"`
}

// CohortCookie is the signed cookie that keeps a user's canary key. The
// proxy sets it on an answer to a request that has no valid one, with
// HttpOnly, SameSite=Lax and Path=/; its value is the key and an HMAC of
// it under the proxy's cohort secret (proxy.cohort_secret), so a cookie
// that was forged or altered is ignored and set anew. Replicas must share
// the secret to accept each other's cookies.
type CohortCookie struct {
	// Name is the cookie's name. If empty, "strangler_cohort".
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// MaxAge is how long the browser keeps the cookie. If zero, 720h
	// (30 days).
	MaxAge Duration `yaml:"max_age,omitempty" json:"max_age,omitempty"`
	// Secure marks the cookie Secure, so that browsers send it over HTTPS
	// only. If nil, it is Secure when the request came over HTTPS to the
	// proxy or, from a trusted proxy, with X-Forwarded-Proto: https.
	Secure *bool `yaml:"secure,omitempty" json:"secure,omitempty"`
}

// PathHandling says which path a module's backends receive. Routes always
// match on the normalised path.
type PathHandling string

// The path handlings.
const (
	// PathNormalize forwards the normalised path, the one that was
	// matched: unreserved escapes decoded, repeated slashes merged, dot
	// segments resolved.
	PathNormalize PathHandling = "normalize"
	// PathAsIs forwards the path as the client sent it, byte for byte,
	// with "//" and "%2F" intact, for an app that tells them apart. A path
	// with a dot segment ("." or "..", literal or escaped, also between
	// "%2F" or "\\") is refused with 400, since the backend could resolve it
	// to a resource that another route selects.
	PathAsIs PathHandling = "as_is"
)

// Fallback is a module's fallback policy: which of the requests meant for
// its candidate legacy serves when the candidate cannot take them, because
// it is unreachable, its breaker is open or it has no healthy instance, or,
// for a request that can be sent again, when it failed or answered 5xx. It
// applies whenever the candidate serves (canary and extracted modes); a
// shadow module is answered by legacy anyway.
//
// Once the extracted service owns a module's data, a write that legacy
// serves is committed to a copy that no longer leads, and skips whatever
// the service does around it: such a module wants safe or none.
type Fallback string

// The fallback policies.
const (
	// FallbackAll lets legacy serve any request the candidate could not
	// take. A request that may have reached the candidate falls back only
	// if it is idempotent and its body can be sent again.
	FallbackAll Fallback = "all"
	// FallbackSafe lets legacy serve only safe requests (GET, HEAD,
	// OPTIONS, TRACE), within FallbackAll's rules.
	FallbackSafe Fallback = "safe"
	// FallbackNone lets nothing fall back.
	FallbackNone Fallback = "none"
)

// Allows reports whether a request with method may fall back under f.
// The empty policy is FallbackAll.
func (f Fallback) Allows(method []byte) bool {
	switch f {
	case FallbackNone:
		return false
	case FallbackSafe:
		return IsSafe(method)
	}
	return true
}

// Shadow configures shadow copies and how their answers are compared.
type Shadow struct {
	// Writes shadows non-idempotent requests too. Only for a candidate in
	// dry-run mode, which does not commit what it is sent: the proxy marks
	// the copies with X-Strangler-Shadow: dry-run.
	Writes bool `yaml:"writes,omitempty" json:"writes,omitempty"`
	// CompareHeaders are the response headers compared. If empty,
	// Content-Type.
	CompareHeaders []string `yaml:"compare_headers,omitempty" json:"compare_headers,omitempty"`
	// Ignore lists JSON paths left out of the comparison, such as
	// "$.generated_at" or "$.items[*].updated_at".
	Ignore []string `yaml:"ignore,omitempty" json:"ignore,omitempty"`
	// SamplePercent of eligible requests are shadowed. If zero, 100.
	SamplePercent int `yaml:"sample_percent,omitempty" json:"sample_percent,omitempty"`
}

// RouteDef is one route as written: a match and, optionally, settings that override its module's.
type RouteDef struct {
	// ID names the route in metrics, logs and errors. It is unique in the
	// table.
	ID string `yaml:"id" json:"id"`
	// Methods the route accepts. If empty, any.
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	// Path is an exact pattern: literal segments and {param} segments
	// that match one non-empty segment. Exactly one of Path and Prefix
	// is set.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Prefix is a pattern that matches the path and everything below it,
	// at a segment boundary: "/api/orders" matches "/api/orders" and
	// "/api/orders/7", not "/api/ordersx".
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Host matches the Host header without its port, exactly or, with a
	// leading "*.", any subdomain.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Headers, Query and Cookies must all be present with these values;
	// the value "*" matches any non-empty value.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Query   map[string]string `yaml:"query,omitempty" json:"query,omitempty"`
	Cookies map[string]string `yaml:"cookies,omitempty" json:"cookies,omitempty"`
	// Priority breaks ties between routes that are equally specific:
	// the higher wins.
	Priority int `yaml:"priority,omitempty" json:"priority,omitempty"`

	// Mode and Weight override the module's, until the next module-wide
	// change (shadow, canary, flip, rollback) resets them.
	Mode   Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	Weight *int `yaml:"weight,omitempty" json:"weight,omitempty"`
	// Legacy, Candidate, Timeout and Retries override the module's.
	Legacy    string   `yaml:"legacy,omitempty" json:"legacy,omitempty"`
	Candidate string   `yaml:"candidate,omitempty" json:"candidate,omitempty"`
	Timeout   Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retries   *int     `yaml:"retries,omitempty" json:"retries,omitempty"`
}

// Module returns the module named name, or nil.
func (d *Doc) Module(name string) *Module {
	for i := range d.Modules {
		if d.Modules[i].Name == name {
			return &d.Modules[i]
		}
	}
	return nil
}

// Clone returns a deep copy of d, so that a change can be prepared without
// touching the table that is serving.
func (d *Doc) Clone() *Doc {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("routes: clone: %v", err))
	}
	var c Doc
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("routes: clone: %v", err))
	}
	return &c
}

// Duration is a time.Duration written as a Go duration string ("1.5s") in
// YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"5s\": %w", err)
	}
	return d.parse(s)
}

// MarshalYAML writes d as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return d.parse(s)
}

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"5s\", not %q", s)
	}
	*d = Duration(v)
	return nil
}
