package inventory

import (
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/verify"
)

// BackfillJobs are the snapshots of the monolith's rows that the forward
// sync reads, in the order to run them: products first, so that the
// reference ↔ SKU pairs are there when the levels arrive (levels that
// arrive first are parked until they are), then the stock levels keyed by
// inv_stock's generated stock_key, so that a snapshot has the aggregate id
// of the live stock events ("P-000042/AMS1") and shares their partition and
// watermark. DSN is left empty: the monolith's database.
func BackfillJobs() []backfill.Job {
	return []backfill.Job{
		{
			Name:          "inventory-products",
			Table:         "catalog_products",
			Key:           "id",
			Columns:       []string{"id", "sku", "active"},
			AggregateType: ProductAggregate,
			EventType:     ProductSnapshot,
			Source:        "monolith.catalog",
		},
		{
			Name:          "inventory-stock",
			Table:         "inv_stock",
			Key:           "stock_key",
			Columns:       []string{"product_ref", "warehouse_code", "on_hand", "reserved", "qty_available", "version", "updated_at"},
			Rename:        map[string]string{"warehouse_code": "warehouse"},
			AggregateType: StockAggregate,
			EventType:     StockSnapshot,
			Source:        "monolith.inventory",
		},
	}
}

// VerifyCheck compares the monolith's inv_stock (source, monolith.dsn)
// with the service's copy as the legacy_stock view of its database
// (serviceDSN) presents it: legacy keys and the derived qty_available. The
// version is compared too: each side counts every change once, the
// service's own as well as those the syncs apply.
func VerifyCheck(serviceDSN string) verify.Check {
	return verify.Check{
		Name:   "inventory",
		Source: verify.Endpoint{Table: "inv_stock", Key: "stock_key"},
		Target: verify.Endpoint{DSN: serviceDSN, Table: "legacy_stock", Key: "stock_key"},
		Columns: []verify.Column{
			{Target: "on_hand", Type: "int"},
			{Target: "reserved", Type: "int"},
			{Target: "qty_available", Type: "int"},
			{Target: "version", Type: "int"},
		},
	}
}
