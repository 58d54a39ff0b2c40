package orders_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/extracted/orders"
)

// TestConfig checks the defaults and that Validate names every bad field.
func TestConfig(t *testing.T) {
	var zero orders.Config
	zero.SetDefaults("/data")
	if err := zero.Validate(); err != nil {
		t.Fatalf("the zero config with defaults: %v", err)
	}
	if zero.Addr != "127.0.0.1:9103" || zero.DSN != "sqlite:/data/orders.db" || zero.RegisterWith.Service != "orders" ||
		zero.PlaceTimeout != 10*time.Second || zero.InventoryURL != "http://127.0.0.1:9101" || zero.PaymentsURL != "http://127.0.0.1:9001" {
		t.Errorf("defaults %+v", zero)
	}
	tests := []struct {
		name   string
		change func(*orders.Config)
		want   string
	}{
		{"addr", func(c *orders.Config) { c.Addr = "nowhere" }, "addr:"},
		{"dsn", func(c *orders.Config) { c.DSN = "mysql://x" }, "dsn:"},
		{"inventory url", func(c *orders.Config) { c.InventoryURL = "ftp://x" }, "inventory_url:"},
		{"payments url", func(c *orders.Config) { c.PaymentsURL = "127.0.0.1:9001" }, "payments_url:"},
		{"place timeout", func(c *orders.Config) { c.PlaceTimeout = -time.Second }, "place_timeout:"},
		{"step timeout", func(c *orders.Config) { c.StepTimeout = -time.Second }, "step_timeout:"},
		{"body limit", func(c *orders.Config) { c.MaxBodyBytes = -1 }, "max_body_bytes:"},
		{"back sync dsn", func(c *orders.Config) { c.Sync.BackSyncDSN = "mysql://x" }, "sync.back_sync_dsn:"},
		{"back sync into its own database", func(c *orders.Config) { c.Sync.BackSyncDSN = c.DSN }, "sync.back_sync_dsn:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := zero
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
