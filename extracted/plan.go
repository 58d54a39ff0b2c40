package extracted

import (
	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/phase"
)

// InventoryPlan is the inventory extraction in the toolkit's terms: the
// proxy modules of its reads and writes, the backfills that give the
// service its first copy, the verify check that compares the copies, the
// consumer group that keeps the copy in step, and the components that must
// apply a phase before the proxy moves traffic for it.
func InventoryPlan() phase.Module {
	return phase.Module{
		Name:           "inventory",
		ReadRoutes:     "inventory",
		WriteRoutes:    "inventory-writes",
		Backfill:       []string{"inventory-products", "inventory-stock"},
		Verify:         "inventory",
		SyncGroup:      "inventory-service",
		SyncAggregates: []string{"product", "stock"},
		Components:     []string{"monolith", "inventory-service"},
	}
}

// InventoryBackfills snapshot the monolith's rows that the inventory
// service needs, in order: products first, for the mapping from the legacy
// product reference to the SKU, then the stock levels, keyed by the
// generated stock_key column so that a snapshot event has the aggregate id
// of the live stock events ("P-000042/AMS1"). The anti-corruption layer
// defines them, since it reads what they produce.
func InventoryBackfills() []backfill.Job { return aclinv.BackfillJobs() }

// InventoryChecks compare the monolith's inv_stock with the service's copy
// as its legacy_stock view presents it. serviceDSN is the service's
// database (services.inventory.dsn).
func InventoryChecks(serviceDSN string) []verify.Check {
	return []verify.Check{aclinv.VerifyCheck(serviceDSN)}
}
