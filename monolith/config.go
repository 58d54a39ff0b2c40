package monolith

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/payments"
)

// Config configures the shop monolith. Every empty field takes the default
// its comment names.
type Config struct {
	// Addr is the HTTP listen address. If empty, "127.0.0.1:9001" is used.
	Addr string `yaml:"addr"`
	// DSN names the database: "sqlite:PATH" or a "postgres://" URL. If
	// empty, "sqlite:<data_dir>/monolith.db" is used.
	DSN string `yaml:"dsn"`
	// Seed loads the demo data set (about 50 products, 20 customers and
	// their stock) into an empty database at start. If nil, true.
	Seed *bool `yaml:"seed"`
	// MaxBodyBytes caps request bodies; larger ones get 413. If zero, 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// CreditLimitCents is the payments module's credit limit, in minor
	// units, of every customer without a limit of their own. If zero,
	// 100000 (1,000.00).
	CreditLimitCents int64 `yaml:"credit_limit_cents"`
}

// SetDefaults fills the empty fields; dataDir anchors the SQLite default.
func (c *Config) SetDefaults(dataDir string) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9001"
	}
	if c.DSN == "" {
		c.DSN = "sqlite:" + filepath.Join(dataDir, "monolith.db")
	}
	if c.Seed == nil {
		t := true
		c.Seed = &t
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.CreditLimitCents == 0 {
		c.CreditLimitCents = payments.DefaultCreditLimitCents
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if _, err := db.ParseDSN(c.DSN); err != nil {
		errs = append(errs, fmt.Errorf("dsn: %w", err))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: must be positive, not %d", c.MaxBodyBytes))
	}
	if c.CreditLimitCents < 0 || c.CreditLimitCents > payments.MaxCreditLimitCents {
		errs = append(errs, fmt.Errorf("credit_limit_cents: must be between 0 and %d, not %d", int64(payments.MaxCreditLimitCents), c.CreditLimitCents))
	}
	return errors.Join(errs...)
}

// SeedEnabled reports whether the demo data should be loaded.
func (c Config) SeedEnabled() bool { return c.Seed == nil || *c.Seed }
