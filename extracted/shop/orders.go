package shop

import (
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/internal/cli"
)

func init() {
	ordersDSN := func(cfg *config.Config) string { return Services.Of(cfg).Orders.DSN }
	// `strangler migrate up orders` migrates the orders service's own
	// database: its read models, event store and outbox.
	cli.RegisterMigrations("orders", ordersDSN, orders.Migrations)
	// `strangler projections rebuild orders` rebuilds its read models.
	cli.RegisterProjections("orders", ordersDSN, func(gdb *gorm.DB) (*eventsource.Runner, error) {
		return orders.NewProjections(gdb, eventsource.RunnerConfig{}, eventsource.RunnerOptions{})
	})
}
