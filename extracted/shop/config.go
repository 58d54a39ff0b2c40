// Package shop is the reference shop's wiring into the strangler toolkit:
// its config sections (monolith, services), its defaults (the extraction
// plan, backfill jobs and verify checks), and, for the command line, its
// commands and the components that `strangler up` runs. The toolkit imports
// nothing of the shop; cmd/strangler plugs the shop in by importing this
// package, as a Caddy main plugs in its modules.
package shop

import (
	"errors"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/monolith"
)

// Monolith is the monolith's section, under the YAML key monolith.
var Monolith = config.Register[monolith.Config]("monolith", "log")

// Services is the extracted services' section, under the YAML key services.
var Services = config.Register[ServicesConfig]("services", "verify")

// ServicesConfig configures the extracted services, one section each.
type ServicesConfig struct {
	// Inventory configures the extracted inventory service.
	Inventory inventory.Config `yaml:"inventory"`
	// Orders configures the extracted orders service.
	Orders orders.Config `yaml:"orders"`
}

// SetDefaults fills each service's empty fields.
func (c *ServicesConfig) SetDefaults(dataDir string) {
	c.Inventory.SetDefaults(dataDir)
	c.Orders.SetDefaults(dataDir)
}

// Validate reports every invalid field, as <service>.field.
func (c ServicesConfig) Validate() error {
	return errors.Join(config.Prefix("inventory", c.Inventory.Validate()), config.Prefix("orders", c.Orders.Validate()))
}
