package orders

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
)

// Config configures the orders service. Every empty field takes the
// default its comment names.
type Config struct {
	// Addr is the HTTP listen address. If empty, "127.0.0.1:9103" is used.
	Addr string `yaml:"addr"`
	// DSN names the service's own database: "sqlite:PATH" or a
	// "postgres://" URL, never the monolith's. If empty,
	// "sqlite:<data_dir>/orders.db" is used.
	DSN string `yaml:"dsn"`
	// MaxBodyBytes caps request bodies; larger ones get 413. If zero, 1 MiB,
	// as the monolith.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// InventoryURL is the inventory service's base URL, the participant
	// that reserves and releases stock (its /v1 API). If empty,
	// "http://127.0.0.1:9101".
	InventoryURL string `yaml:"inventory_url"`
	// PaymentsURL is the monolith's base URL, whose payments module
	// authorizes, voids and captures (/api/payments). If empty,
	// "http://127.0.0.1:9001".
	PaymentsURL string `yaml:"payments_url"`
	// PlaceTimeout is how long POST /api/orders waits for the placement
	// saga to end before it answers 202 with the order's Location. If
	// zero, 10s.
	PlaceTimeout time.Duration `yaml:"place_timeout"`
	// StepTimeout bounds each attempt of a saga step's call to a
	// participant. If zero, 5s.
	StepTimeout time.Duration `yaml:"step_timeout"`
	// CompensationAttempts is how many times a compensation (a release of
	// stock, a void of a payment) is tried, at most 5 s apart, before its
	// saga waits for an operator (manual). A forward step gives up after
	// 5 attempts, but a compensation must outlast a participant's restart.
	// If zero, 12 (about 40 s).
	CompensationAttempts int `yaml:"compensation_attempts"`
	// RegisterWith registers the service with the proxy's service
	// registry, as the inventory service does. Its Service is "orders" if
	// empty.
	RegisterWith servicekit.RegisterConfig `yaml:"register_with"`
	// Sync configures the service's change-data parts.
	Sync SyncConfig `yaml:"sync"`
}

// SyncConfig configures the service's consumers, its relay and the back
// sync.
type SyncConfig struct {
	// Forward consumes the monolith's order events into the service's
	// event store (acl/orders Forward, consumer group "orders-service"),
	// the copy the sync phase backfills and keeps in step. If nil, true.
	Forward *bool `yaml:"forward"`
	// ReadModels consumes the monolith's customer and product events into
	// the local read models (consumer group orders-service-readmodels).
	// If nil, true.
	ReadModels *bool `yaml:"read_models"`
	// Relay publishes the service's outbox. If nil, true.
	Relay *bool `yaml:"relay"`
	// BackSyncDSN, when set, makes the service also run the back sync:
	// its own order events applied to the monolith's orders tables in
	// this database (acl/orders BackSync, consumer group
	// "monolith-orders-acl"). If empty, no back sync runs; `strangler up`
	// sets it to monolith.dsn.
	BackSyncDSN string `yaml:"back_sync_dsn"`
}

// SetDefaults fills the empty fields; dataDir anchors the SQLite default.
func (c *Config) SetDefaults(dataDir string) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9103"
	}
	if c.DSN == "" {
		c.DSN = "sqlite:" + filepath.Join(dataDir, "orders.db")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.InventoryURL == "" {
		c.InventoryURL = "http://127.0.0.1:9101"
	}
	if c.PaymentsURL == "" {
		c.PaymentsURL = "http://127.0.0.1:9001"
	}
	if c.PlaceTimeout == 0 {
		c.PlaceTimeout = 10 * time.Second
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 5 * time.Second
	}
	if c.CompensationAttempts == 0 {
		c.CompensationAttempts = 12
	}
	c.RegisterWith.SetDefaults("orders")
	t := true
	if c.Sync.Forward == nil {
		c.Sync.Forward = &t
	}
	if c.Sync.ReadModels == nil {
		c.Sync.ReadModels = &t
	}
	if c.Sync.Relay == nil {
		c.Sync.Relay = &t
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("addr: %w", err))
		}
	}
	if _, err := db.ParseDSN(c.DSN); err != nil {
		errs = append(errs, fmt.Errorf("dsn: %w", err))
	}
	for _, f := range []struct{ name, u string }{{"inventory_url", c.InventoryURL}, {"payments_url", c.PaymentsURL}} {
		name, u := f.name, f.u
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
			errs = append(errs, fmt.Errorf("%s: %q is not an http(s) URL", name, u))
		}
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"place_timeout", c.PlaceTimeout}, {"step_timeout", c.StepTimeout}, {"register_with.ttl", c.RegisterWith.TTL}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, not %s", f.name, f.d))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: must be positive, not %d", c.MaxBodyBytes))
	}
	if c.CompensationAttempts < 0 {
		errs = append(errs, fmt.Errorf("compensation_attempts: must be positive, not %d", c.CompensationAttempts))
	}
	if err := servicekit.CheckBackSyncDSN(c.Sync.BackSyncDSN, c.DSN); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
