package orders

import (
	"fmt"
	"path/filepath"

	"github.com/stranglerkit/strangler/db"
)

// Config configures the orders service. Every empty field takes the
// default its comment names.
type Config struct {
	// DSN names the service's own database: "sqlite:PATH" or a
	// "postgres://" URL, never the monolith's. If empty,
	// "sqlite:<data_dir>/orders.db" is used.
	DSN string `yaml:"dsn"`
}

// SetDefaults fills the empty fields; dataDir anchors the SQLite default.
func (c *Config) SetDefaults(dataDir string) {
	if c.DSN == "" {
		c.DSN = "sqlite:" + filepath.Join(dataDir, "orders.db")
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	if _, err := db.ParseDSN(c.DSN); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	return nil
}
