package relay

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/stranglerkit/strangler/db"
)

// Config is the "relay" section of the config.
type Config struct {
	// DSN names the database whose outbox the relay publishes. If empty, the
	// monolith's database (monolith.dsn) is used.
	DSN string `yaml:"dsn"`
	// Name identifies the relay group: relays with the same name share one
	// lease and one position, so that only one of them publishes at a time.
	// If empty, "default" is used.
	Name string `yaml:"name"`
	// BatchSize is the most events read and published at once. If zero,
	// 4096 is used.
	BatchSize int `yaml:"batch_size"`
	// MaxBatchBytes caps the keys, payloads and headers of one batch, so
	// that each partition's share fits one produce request under the
	// broker's message.max.bytes. If zero, 900 KiB is used.
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// PollInterval is how long the relay waits before it looks at an outbox
	// that had nothing new; after a batch it looks again after a quarter of
	// it. It bounds the delay that the relay adds to an event, and sets how
	// often an idle relay queries the database. If zero, 10ms is used.
	PollInterval time.Duration `yaml:"poll_interval"`
	// BatchTimeout is kafka-go's batch delay: how long a partition's partial
	// batch waits for more messages. The relay hands kafka-go whole batches,
	// so it only needs to be long enough to gather one call's messages. If
	// zero, 1ms is used (kafka-go's own default is 1s).
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// LeaseTTL is how long a relay's lease lasts without renewal; a standby
	// takes over this long after the active relay dies. If zero, 10s is
	// used.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Retention is how long published events stay in the outbox before the
	// relay deletes them. If zero, 24h is used.
	Retention time.Duration `yaml:"retention"`
	// CleanupInterval is how often the relay deletes published events older
	// than the retention. If zero, 1m is used.
	CleanupInterval time.Duration `yaml:"cleanup_interval"`
	// MetricsAddr is where `strangler relay` serves /metrics, /healthz and
	// /readyz. If empty, "127.0.0.1:9102" is used.
	MetricsAddr string `yaml:"metrics_addr"`
}

// SetDefaults fills the empty fields, except DSN, which the caller resolves
// against the monolith's.
func (c *Config) SetDefaults(string) {
	if c.Name == "" {
		c.Name = "default"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 4096
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 900 << 10
	}
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = time.Millisecond
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = time.Minute
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = "127.0.0.1:9102"
	}
}

var relayName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,100}$`)

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.DSN != "" {
		if _, err := db.ParseDSN(c.DSN); err != nil {
			errs = append(errs, fmt.Errorf("dsn: %w", err))
		}
	}
	if !relayName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q: want 1 to 100 of a-z, A-Z, 0-9, '.', '_' or '-'", c.Name))
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		errs = append(errs, fmt.Errorf("batch_size: want 1 to 100000, not %d", c.BatchSize))
	}
	if c.MaxBatchBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("max_batch_bytes: want at least 1024, not %d", c.MaxBatchBytes))
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, not %s", name, d))
		}
	}
	positive("poll_interval", c.PollInterval)
	positive("batch_timeout", c.BatchTimeout)
	positive("lease_ttl", c.LeaseTTL)
	positive("retention", c.Retention)
	positive("cleanup_interval", c.CleanupInterval)
	if c.LeaseTTL > 0 && c.LeaseTTL < 500*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease_ttl: want at least 500ms, not %s", c.LeaseTTL))
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		errs = append(errs, fmt.Errorf("metrics_addr: %w", err))
	}
	return errors.Join(errs...)
}
