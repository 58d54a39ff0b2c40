package dataplane

import (
	"io"
	"log/slog"
	"time"
)

// Config is what the data plane takes of proxy.Config, with the defaults
// applied (proxy.Config documents each field and its default), and the
// parts the facade wires in. Zero numbers are not defaulted here: the
// facade applies proxy.Config's defaults before it builds the Plane.
type Config struct {
	// LegacyCheckInterval is how often the legacy backends are checked.
	LegacyCheckInterval time.Duration
	// TrustedProxies are the CIDRs whose X-Forwarded-* headers are kept.
	TrustedProxies []string
	// InternalHeaders are removed from client requests.
	InternalHeaders []string
	// UnderscoresInHeaders passes header names with an underscore.
	UnderscoresInHeaders bool
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	// BufferBodyBytes is the largest body read whole before forwarding.
	BufferBodyBytes int
	// ReadHeaderTimeout bounds reading a request's line and headers.
	ReadHeaderTimeout time.Duration
	// BodyIdleTimeout bounds each wait for more of a request body.
	BodyIdleTimeout time.Duration
	// ClientWriteTimeout bounds each wait for a client to take more of
	// its answer.
	ClientWriteTimeout time.Duration
	// IdleTimeout closes idle client connections.
	IdleTimeout time.Duration
	// MaxConnections is the most client connections open at once, 0 for
	// the one derived from the open-file limit, -1 for none.
	MaxConnections int
	// RetryBudgetRatio is the default share of retries to requests.
	RetryBudgetRatio float64
	// Shadow sizes the shadow machinery.
	Shadow ShadowConfig
	// AccessLog configures the per-request log.
	AccessLog AccessLogConfig
	// CohortSecret signs the cohort cookies. If empty, a random secret of
	// this process, so that its cookies hold only until it ends.
	CohortSecret []byte

	// Log receives the data plane's warnings. If nil, slog.Default().
	Log *slog.Logger
	// AccessLogWriter takes the access log instead of AccessLog.Path or
	// standard error. If nil, those.
	AccessLogWriter io.Writer
	// Dial connects to backend instances. If nil, a plain TCP dial.
	Dial Dialer
	// Services gives the instances of the backends that name a service.
	// If nil, such backends have none.
	Services Services
	// AcceptRetries counts the listener's retried accept errors, for the
	// connection metrics. If nil, 0.
	AcceptRetries func() int64
}

// Services is the service registry as the data plane reads it.
type Services interface {
	// URLs lists the live instances of service.
	URLs(service string) ([]string, error)
}

// ShadowConfig sizes the shadow queue and its workers.
type ShadowConfig struct {
	// Queue is how many copies may wait; more are dropped and counted.
	// If zero, 1024.
	Queue int `yaml:"queue"`
	// Workers send copies concurrently. If zero, 4.
	Workers int `yaml:"workers"`
	// CandidateQueue is how many of the waiting copies may be for one
	// candidate, so that a candidate that hangs fills its own share of
	// the queue and not the others'; more are dropped and counted. At
	// most Queue. If zero, a quarter of Queue, at least 1.
	CandidateQueue int `yaml:"candidate_queue"`
	// CandidateWorkers is how many workers may send copies to one
	// candidate at once, so that copies to a candidate that hangs hold
	// these, up to Timeout each, while the other workers serve the other
	// candidates. At most Workers. If zero, half of Workers, at least 1.
	CandidateWorkers int `yaml:"candidate_workers"`
	// MaxBodyBytes caps the request and response bodies a copy keeps;
	// a larger exchange is not shadowed and is counted. If zero, 256 KiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// Samples is how many mismatches each route keeps. If zero, 20.
	Samples int `yaml:"samples"`
	// Timeout of a shadow copy. If zero, 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxPerSecond caps the copies sent per second across all routes, so
	// that shadowing a busy module takes a sample rather than the proxy's
	// CPU; copies over the cap are skipped and counted. If zero, 1000; -1
	// removes the cap.
	MaxPerSecond int `yaml:"max_per_second"`
	// Recheck, when positive, asks legacy and the candidate again that
	// long after a mismatch of a safe request, and counts the mismatch as
	// settled, not as a mismatch, when the two fresh answers agree: a
	// candidate fed by a sync lags the monolith by a few milliseconds, and
	// a read that raced a write differs for that moment. Set it when the
	// candidate's data comes through a sync. If zero, mismatches are
	// final.
	Recheck time.Duration `yaml:"recheck"`
	// Redact says what the mismatch samples hide.
	Redact ShadowRedact `yaml:"redact"`
}

// ShadowRedact says what the shadow samples hide. Samples are redacted
// before they are stored, so that what is hidden never reaches the admin
// API or the CLI.
type ShadowRedact struct {
	// Disabled keeps samples as the backends answered, secrets and all,
	// for a test setup without real users' data. If false, samples hide
	// the values of the headers Authorization, Cookie, Set-Cookie,
	// Proxy-Authorization and X-Api-Key; of JSON members and query
	// parameters whose names contain password, passwd, secret, token,
	// email, api_key, authorization, credential, private_key, cookie,
	// session, card_number or cvv; and JWT-, bearer- and e-mail-shaped
	// strings anywhere.
	Disabled bool `yaml:"disabled"`
	// Headers are more compared headers whose values samples hide. If
	// empty, none.
	Headers []string `yaml:"headers"`
	// Paths are more JSON paths whose values, and everything under them,
	// samples hide, such as "$..phone" or "$.customer.address". If
	// empty, none.
	Paths []string `yaml:"paths"`
}

// AccessLogConfig configures the access log.
type AccessLogConfig struct {
	// Enabled turns the access log on. If nil, true.
	Enabled *bool `yaml:"enabled"`
	// Path is a file to append to. If empty, the process's standard error.
	Path string `yaml:"path"`
	// BufferBytes is how much of the log may wait for the writer; lines
	// beyond are dropped and counted. If zero, 4 MiB.
	BufferBytes int `yaml:"buffer_bytes"`
	// RedactQuery names the query parameters whose values the log
	// replaces with REDACTED, keeping the names; names compare without
	// regard to case or percent-encoding, and "name[]" counts as name. If
	// empty, DefaultRedactQuery.
	RedactQuery []string `yaml:"redact_query"`
}
