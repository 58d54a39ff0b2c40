package inventory

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
)

// Config configures the inventory service. Every empty field takes the
// default its comment names.
type Config struct {
	// Addr is the HTTP listen address. If empty, "127.0.0.1:9101" is used.
	Addr string `yaml:"addr"`
	// DSN names the service's own database: "sqlite:PATH" or a
	// "postgres://" URL, never the monolith's. If empty,
	// "sqlite:<data_dir>/inventory.db" is used.
	DSN string `yaml:"dsn"`
	// MaxBodyBytes caps request bodies; larger ones get 413. If zero, 1 MiB,
	// as the monolith.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RegisterWith registers the service with the proxy's service
	// registry. Its Service is "inventory" if empty.
	RegisterWith servicekit.RegisterConfig `yaml:"register_with"`
	// Sync configures the service's change-data parts.
	Sync SyncConfig `yaml:"sync"`
}

// SyncConfig configures the forward sync, the service's relay and the back
// sync.
type SyncConfig struct {
	// Forward consumes the monolith's stock and product events into the
	// service (consumer group "inventory-service"). If nil, true.
	Forward *bool `yaml:"forward"`
	// Relay publishes the service's outbox. If nil, true.
	Relay *bool `yaml:"relay"`
	// BackSyncDSN, when set, makes the service also run the back sync:
	// its own events applied to the monolith's tables in this database
	// (consumer group "monolith-inventory-acl"). `strangler up` sets it to
	// monolith.dsn.
	BackSyncDSN string `yaml:"back_sync_dsn"`
}

// SetDefaults fills the empty fields; dataDir anchors the SQLite default.
func (c *Config) SetDefaults(dataDir string) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9101"
	}
	if c.DSN == "" {
		c.DSN = "sqlite:" + filepath.Join(dataDir, "inventory.db")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	c.RegisterWith.SetDefaults("inventory")
	if c.Sync.Forward == nil {
		t := true
		c.Sync.Forward = &t
	}
	if c.Sync.Relay == nil {
		t := true
		c.Sync.Relay = &t
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
	if c.RegisterWith.TTL < 0 {
		errs = append(errs, fmt.Errorf("register_with.ttl: must be positive, not %s", c.RegisterWith.TTL))
	}
	if err := servicekit.CheckBackSyncDSN(c.Sync.BackSyncDSN, c.DSN); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
