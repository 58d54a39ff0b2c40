package control

import (
	"errors"
	"fmt"
	"time"

	"github.com/stranglerkit/strangler/db"
)

// StoreConfig is the config's control section: which store keeps the
// control state, and how a replica follows a shared one.
type StoreConfig struct {
	// DSN picks the store. If empty, the embedded store in the proxy's
	// state dir, for one proxy process. A postgres:// URL is the shared
	// store (control/pgstore), which several proxy replicas use at once.
	DSN string `yaml:"dsn"`
	// PollInterval is how often a replica of a shared store reads the
	// stored state: the safety net for a missed wake-up, and the probe
	// behind the staleness metric. If zero, 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// StaleAfter is how long a replica goes without reading the shared
	// store before /readyz reports it degraded. If zero, 10s.
	StaleAfter time.Duration `yaml:"stale_after"`
	// KeepHistory is how many of the newest revisions of the state the
	// shared store's history keeps; a save deletes the older ones. The
	// audit log is kept whole. If zero, 1000.
	KeepHistory int `yaml:"keep_history"`
}

// The defaults of StoreConfig.
const (
	DefaultPollInterval = time.Second
	DefaultStaleAfter   = 10 * time.Second
	DefaultKeepHistory  = 1000
)

// SetDefaults fills the zero fields.
func (c *StoreConfig) SetDefaults(string) {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.KeepHistory == 0 {
		c.KeepHistory = DefaultKeepHistory
	}
}

// Validate checks the DSN's form and the durations. The DSN appears in
// errors only redacted.
func (c *StoreConfig) Validate() error {
	var errs []error
	if c.DSN != "" {
		d, err := db.ParseDSN(c.DSN)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("dsn: %w", err))
		case d.Dialect != db.Postgres:
			errs = append(errs, fmt.Errorf("dsn: %s: the shared control store needs a postgres:// URL, or leave it empty for the embedded one", db.Redact(c.DSN)))
		}
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll_interval: must not be negative, not %v", c.PollInterval))
	}
	if c.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("stale_after: must not be negative, not %v", c.StaleAfter))
	}
	if c.KeepHistory < 0 {
		errs = append(errs, fmt.Errorf("keep_history: must not be negative, not %d", c.KeepHistory))
	}
	return errors.Join(errs...)
}
