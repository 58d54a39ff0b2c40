package shop

import (
	"time"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/extracted"
	"github.com/stranglerkit/strangler/phase"
)

// Defaults is the config the strangler binary's layers start from: the
// toolkit's zero values plus the shop's extraction plan, its backfill jobs
// and verify checks, so that the guides work on `strangler up` with no
// config file. A config file that sets phases.modules, backfill.jobs or
// verify.checks replaces these lists. It lives here, with the rest of the
// shop's knowledge, so that the toolkit's config package stays generic and
// the example config's test loads the same base as the binary.
func Defaults() *config.Config {
	c := &config.Config{}
	c.Phases.Modules = []phase.Module{extracted.InventoryPlan(), extracted.OrdersPlan()}
	c.Backfill.Jobs = append(extracted.InventoryBackfills(), extracted.OrdersBackfills()...)
	c.Verify.Checks = append(extracted.InventoryChecks(""), extracted.OrdersChecks("")...)
	// The inventory service's data comes through a sync that lags the
	// monolith by milliseconds: a shadowed read that raced a write is
	// asked again before it counts as a mismatch.
	c.Proxy.Shadow.Recheck = time.Second
	return c
}

// Resolve fills what the shop's defaults can only know once the config is
// loaded: the inventory and orders checks' targets are the services'
// databases.
func Resolve(cfg *config.Config) {
	for i, ch := range cfg.Verify.Checks {
		switch {
		case ch.Target.DSN != "":
		case ch.Name == "inventory" && ch.Target.Table == "legacy_stock":
			cfg.Verify.Checks[i].Target.DSN = Services.Of(cfg).Inventory.DSN
		case ch.Name == "orders" && ch.Target.Table == "order_views":
			cfg.Verify.Checks[i].Target.DSN = Services.Of(cfg).Orders.DSN
		}
	}
}
