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
	c.Verify.Checks = extracted.InventoryChecks()
	return c
}
