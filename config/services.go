package config

import (
	"errors"

	"github.com/stranglerkit/strangler/extracted/inventory"
)

// ServicesConfig configures the extracted services, one section each.
type ServicesConfig struct {
	// Inventory configures the extracted inventory service.
	Inventory inventory.Config `yaml:"inventory"`
}

// SetDefaults fills each service's empty fields.
func (c *ServicesConfig) SetDefaults(dataDir string) { c.Inventory.SetDefaults(dataDir) }

// Validate reports every invalid field, as <service>.field.
func (c ServicesConfig) Validate() error {
	var errs []error
	for _, e := range flatten(c.Inventory.Validate()) {
		errs = append(errs, errors.New("inventory."+e))
	}
	return errors.Join(errs...)
}
