package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/stranglerkit/strangler/proxy/internal/dataplane"
	"github.com/stranglerkit/strangler/proxy/jsondiff"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Config configures the proxy. Every empty field takes the default its
// comment names.
type Config struct {
	// Addr is the data plane's listen address. If empty, "127.0.0.1:8080".
	Addr string `yaml:"addr"`
	// AdminAddr is the admin API's listen address, with /metrics. If
	// empty, "127.0.0.1:8081".
	AdminAddr string `yaml:"admin_addr"`
	// AdminToken is the bearer token of the admin API. If empty, the
	// token in AdminTokenFile is used, and if that file does not exist a
	// random token is generated and written there with mode 0600.
	AdminToken string `yaml:"admin_token" secret:"true"`
	// AdminTokenFile holds the generated token. If empty,
	// "<data_dir>/admin.token".
	AdminTokenFile string `yaml:"admin_token_file"`
	// CohortSecret signs the cohort cookies of sticky.cohort_cookie, at
	// least 16 characters. Replicas must share it, here or in a shared
	// CohortSecretFile, to accept each other's cookies. If empty, the
	// secret in CohortSecretFile is used, and if that file does not exist
	// a random secret is generated and written there with mode 0600.
	CohortSecret string `yaml:"cohort_secret" secret:"true"`
	// CohortSecretFile holds the generated cohort secret. If empty,
	// "<state_dir>/cohort.secret".
	CohortSecretFile string `yaml:"cohort_secret_file"`
	// Legacy is the monolith's base URL, the backend named "legacy" unless
	// the route table defines one. If empty, "http://127.0.0.1:9001".
	Legacy string `yaml:"legacy"`
	// LegacyCheckInterval is how often the proxy checks that its legacy
	// backends accept connections, for its warning log, /readyz and the
	// strangler_proxy_legacy_reachable gauge. If zero, 5s.
	LegacyCheckInterval time.Duration `yaml:"legacy_check_interval"`
	// InventoryFlushInterval is how often the proxy adds the counts of its
	// traffic inventory (requests per route and path template) to the
	// control store, where the replicas' counts add up; the proxy adds
	// them when it stops too, and before the admin API answers an
	// inventory. If zero, 10s.
	InventoryFlushInterval time.Duration `yaml:"inventory_flush_interval"`
	// RoutesFile is a route table in YAML, watched and reloaded when it
	// changes. If empty, the table persisted in StateDir is used, and
	// failing that one catch-all route to legacy.
	RoutesFile string `yaml:"routes_file"`
	// StateDir keeps the persisted table and the audit log. If empty,
	// "<data_dir>/proxy".
	StateDir string `yaml:"state_dir"`
	// TrustedProxies are CIDRs of proxies in front of this one whose
	// X-Forwarded-* headers are kept and extended. If empty, none: those
	// headers are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// InternalHeaders are removed from client requests, on top of
	// X-Strangler-*, X-Forwarded-*, Forwarded and X-Real-IP, because the
	// backends trust them. If empty, none.
	InternalHeaders []string `yaml:"internal_headers"`
	// UnderscoresInHeaders passes request header names that contain an
	// underscore. Many backends (CGI, PHP, Rails, Django) read X_User_Id as
	// X-User-Id, so such a name could slip an internal header past the
	// stripping. If false, they are dropped, as nginx does; even when true,
	// a name that reads as an internal header with dashes is dropped.
	UnderscoresInHeaders bool `yaml:"underscores_in_headers"`
	// MaxBodyBytes caps request bodies; larger ones get 413. If zero,
	// 1 GiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BufferBodyBytes is the largest request body read whole before it is
	// forwarded, so that it can be retried, fall back to legacy or be
	// shadowed; larger bodies stream. If zero, 64 KiB.
	BufferBodyBytes int `yaml:"buffer_body_bytes"`
	// ReadHeaderTimeout bounds reading a client's request line and
	// headers. If zero, 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyIdleTimeout bounds each wait for the next bytes of a request
	// body, like nginx's client_body_timeout, so that a body promised and
	// not sent is answered 408 without holding the connection; a body that
	// keeps arriving may take up to 10 minutes. If zero, 60s.
	BodyIdleTimeout time.Duration `yaml:"body_idle_timeout"`
	// ClientWriteTimeout bounds each wait for a client to take more of its
	// answer, like nginx's send_timeout: a client that stops reading has
	// its connection closed and the backend exchange behind it ended, and
	// is counted in strangler_proxy_rejected_total{reason="client_write_timeout"};
	// an answer that keeps moving, an event stream or a large download,
	// is not cut. If zero, 60s.
	ClientWriteTimeout time.Duration `yaml:"client_write_timeout"`
	// MaxConnections is the most client connections open at once; a
	// connection over it is answered 503 and closed, and counted in
	// strangler_proxy_connections_refused_total, so that the process never
	// runs out of file descriptors for its backends. If zero, half of the
	// open-file limit left after 128 descriptors for the proxy's own use,
	// since each client connection may hold a backend connection too (at
	// least 16); -1 removes the limit.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes client connections idle this long. If zero, 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Timeout is the default backend timeout of routes that set none: how
	// long to wait for the next bytes of an answer. If zero, 30s.
	Timeout time.Duration `yaml:"timeout"`
	// RetryBudgetRatio is the default share of retries to requests per
	// backend. If zero, 0.2.
	RetryBudgetRatio float64 `yaml:"retry_budget_ratio"`
	// Shadow sizes the shadow machinery.
	Shadow ShadowConfig `yaml:"shadow"`
	// AccessLog configures the per-request log.
	AccessLog AccessLogConfig `yaml:"access_log"`
}

// ShadowConfig sizes the shadow queue and its workers; see
// dataplane.ShadowConfig for its fields.
type ShadowConfig = dataplane.ShadowConfig

// ShadowRedact says what the shadow samples hide; see
// dataplane.ShadowRedact for its fields.
type ShadowRedact = dataplane.ShadowRedact

// AccessLogConfig configures the access log; see dataplane.AccessLogConfig
// for its fields.
type AccessLogConfig = dataplane.AccessLogConfig

// DefaultRedactQuery returns the query parameters whose values the access
// log redacts by default: the usual names of credentials and one-time
// codes in URLs.
func DefaultRedactQuery() []string {
	return []string{"access_token", "api_key", "apikey", "auth", "client_secret", "code", "id_token", "key",
		"passwd", "password", "refresh_token", "secret", "session", "sig", "signature", "token"}
}

// defaultDataDir anchors the files of SetDefaults("") where the binary's
// default data_dir does, so that an embedded proxy with a zero config keeps
// its state where `strangler proxy` would.
const defaultDataDir = ".strangler"

// SetDefaults fills the empty fields; dataDir anchors the files. An empty
// dataDir is ".strangler" in the working directory, the binary's default
// data_dir: the state is then in .strangler/proxy and the token file is
// .strangler/admin.token. New applies the defaults itself, with dataDir
// "", so the zero Config works; set StateDir to keep the state elsewhere.
func (c *Config) SetDefaults(dataDir string) {
	if dataDir == "" {
		dataDir = defaultDataDir
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:8081"
	}
	if c.AdminTokenFile == "" {
		c.AdminTokenFile = filepath.Join(dataDir, "admin.token")
	}
	if c.Legacy == "" {
		c.Legacy = "http://127.0.0.1:9001"
	}
	if c.LegacyCheckInterval == 0 {
		c.LegacyCheckInterval = 5 * time.Second
	}
	if c.InventoryFlushInterval == 0 {
		c.InventoryFlushInterval = 10 * time.Second
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(dataDir, "proxy")
	}
	if c.CohortSecretFile == "" {
		c.CohortSecretFile = filepath.Join(c.StateDir, "cohort.secret")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 30
	}
	if c.BufferBodyBytes == 0 {
		c.BufferBodyBytes = 64 << 10
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.BodyIdleTimeout == 0 {
		c.BodyIdleTimeout = 60 * time.Second
	}
	if c.ClientWriteTimeout == 0 {
		c.ClientWriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.RetryBudgetRatio == 0 {
		c.RetryBudgetRatio = 0.2
	}
	if c.Shadow.Queue == 0 {
		c.Shadow.Queue = 1024
	}
	if c.Shadow.Workers == 0 {
		c.Shadow.Workers = 4
	}
	if c.Shadow.MaxBodyBytes == 0 {
		c.Shadow.MaxBodyBytes = 256 << 10
	}
	if c.Shadow.Samples == 0 {
		c.Shadow.Samples = 20
	}
	if c.Shadow.Timeout == 0 {
		c.Shadow.Timeout = 10 * time.Second
	}
	if c.Shadow.MaxPerSecond == 0 {
		c.Shadow.MaxPerSecond = 1000
	}
	if c.AccessLog.Enabled == nil {
		t := true
		c.AccessLog.Enabled = &t
	}
	if c.AccessLog.BufferBytes == 0 {
		c.AccessLog.BufferBytes = 4 << 20
	}
	if len(c.AccessLog.RedactQuery) == 0 {
		c.AccessLog.RedactQuery = DefaultRedactQuery()
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
		errs = append(errs, fmt.Errorf("admin_addr: %w", err))
	}
	if c.Addr != "" && c.Addr == c.AdminAddr && !hasZeroPort(c.Addr) {
		errs = append(errs, errors.New("admin_addr: must differ from addr"))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("admin_token: must be at least 16 characters"))
	}
	if c.CohortSecret != "" && len(c.CohortSecret) < 16 {
		errs = append(errs, errors.New("cohort_secret: must be at least 16 characters"))
	}
	if _, err := routes.ParseBackendURL(c.Legacy); err != nil {
		errs = append(errs, fmt.Errorf("legacy: %w", err))
	}
	for i, s := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(s); err != nil {
			if _, err2 := netip.ParseAddr(s); err2 != nil {
				errs = append(errs, fmt.Errorf("trusted_proxies[%d]: %q is not a CIDR or an address", i, s))
			}
		}
	}
	for i, h := range c.InternalHeaders {
		if !routes.ValidHeaderName(h) {
			errs = append(errs, fmt.Errorf("internal_headers[%d]: %q is not a header name", i, h))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max_body_bytes: must not be negative"))
	}
	if c.BufferBodyBytes < 0 || c.BufferBodyBytes > 16<<20 {
		errs = append(errs, errors.New("buffer_body_bytes: must be 0 to 16 MiB"))
	}
	for name, d := range map[string]time.Duration{"read_header_timeout": c.ReadHeaderTimeout, "body_idle_timeout": c.BodyIdleTimeout, "client_write_timeout": c.ClientWriteTimeout, "idle_timeout": c.IdleTimeout, "timeout": c.Timeout, "shadow.timeout": c.Shadow.Timeout, "shadow.recheck": c.Shadow.Recheck, "legacy_check_interval": c.LegacyCheckInterval, "inventory_flush_interval": c.InventoryFlushInterval} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	if c.MaxConnections < -1 {
		errs = append(errs, errors.New("max_connections: must be positive, or -1 for no limit"))
	}
	if c.RetryBudgetRatio < 0 || c.RetryBudgetRatio > 1 {
		errs = append(errs, errors.New("retry_budget_ratio: must be between 0 and 1"))
	}
	if c.Shadow.Queue < 0 || c.Shadow.Workers < 0 || c.Shadow.CandidateQueue < 0 || c.Shadow.CandidateWorkers < 0 || c.Shadow.MaxBodyBytes < 0 || c.Shadow.Samples < 0 {
		errs = append(errs, errors.New("shadow: sizes must not be negative"))
	}
	if c.Shadow.MaxPerSecond < -1 {
		errs = append(errs, errors.New("shadow.max_per_second: must be positive, or -1 for no cap"))
	}
	if c.Shadow.Workers > 256 {
		errs = append(errs, errors.New("shadow.workers: at most 256"))
	}
	if c.Shadow.CandidateQueue > c.Shadow.Queue {
		errs = append(errs, errors.New("shadow.candidate_queue: at most shadow.queue"))
	}
	if c.Shadow.CandidateWorkers > c.Shadow.Workers {
		errs = append(errs, errors.New("shadow.candidate_workers: at most shadow.workers"))
	}
	if c.Shadow.Recheck > time.Minute {
		errs = append(errs, errors.New("shadow.recheck: at most 1m"))
	}
	for i, h := range c.Shadow.Redact.Headers {
		if !routes.ValidHeaderName(h) {
			errs = append(errs, fmt.Errorf("shadow.redact.headers[%d]: %q is not a header name", i, h))
		}
	}
	for i, s := range c.Shadow.Redact.Paths {
		if _, err := jsondiff.ParsePath(s); err != nil {
			errs = append(errs, fmt.Errorf("shadow.redact.paths[%d]: %w", i, err))
		}
	}
	if c.AccessLog.BufferBytes < 0 {
		errs = append(errs, errors.New("access_log.buffer_bytes: must not be negative"))
	}
	for i, n := range c.AccessLog.RedactQuery {
		if n == "" || len(n) > dataplane.MaxRedactName {
			errs = append(errs, fmt.Errorf("access_log.redact_query[%d]: want a parameter name of 1 to %d bytes", i, dataplane.MaxRedactName))
		}
	}
	return errors.Join(errs...)
}

func hasZeroPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
