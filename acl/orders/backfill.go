package orders

import "github.com/stranglerkit/strangler/changefeed/backfill"

// BackfillJobs are the snapshots of the monolith's rows that fill the
// orders service's read models before the live events take over: the
// customers (id, e-mail, version) and the catalog's prices and names. Their events
// are customer.snapshot and product.snapshot, which ReadModels applies
// like the live ones, an older version never overwriting a newer one.
// DSN is left empty: the monolith's database.
func BackfillJobs() []backfill.Job {
	return []backfill.Job{
		{
			Name:          "orders-customers",
			Table:         "customers",
			Key:           "id",
			Columns:       []string{"id", "email", "version", "updated_at"},
			AggregateType: CustomerAggregate,
			EventType:     CustomerSnapshot,
			Source:        "monolith.customers",
		},
		{
			Name:          "orders-prices",
			Table:         "catalog_products",
			Key:           "id",
			Columns:       []string{"id", "sku", "name", "price_cents", "currency", "active", "version", "updated_at"},
			AggregateType: ProductAggregate,
			EventType:     ProductSnapshot,
			Source:        "monolith.catalog",
		},
	}
}
