package cli

import (
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/extracted"
	"github.com/stranglerkit/strangler/phase"
)

// shopDefaults is the config the layers start from: the toolkit's zero
// values plus the shop's extraction plan, its backfill jobs and verify
// checks, so that the guides work on `strangler up` with no config file. A
// config file that sets phases.modules, backfill.jobs or verify.checks
// replaces these lists.
func shopDefaults() *config.Config {
	c := &config.Config{}
	c.Phases.Modules = []phase.Module{extracted.InventoryPlan()}
	c.Backfill.Jobs = extracted.InventoryBackfills()
	c.Verify.Checks = extracted.InventoryChecks("")
	return c
}

// resolveShop fills what the shop's defaults can only know once the config
// is loaded: the inventory check's target is the service's database.
func resolveShop(cfg *config.Config) {
	for i, ch := range cfg.Verify.Checks {
		if ch.Name == "inventory" && ch.Target.DSN == "" && ch.Target.Table == "legacy_stock" {
			cfg.Verify.Checks[i].Target.DSN = cfg.Services.Inventory.DSN
		}
	}
}
