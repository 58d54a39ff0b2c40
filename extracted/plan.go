package extracted

import (
	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/verify"
	invdomain "github.com/stranglerkit/strangler/extracted/inventory/domain"
	ordersdomain "github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/phase"
)

// InventoryPlan is the inventory extraction in the toolkit's terms: the
// proxy modules of its reads and writes, the backfills that give the
// service its first copy, the verify check that compares the copies, the
// consumer group that keeps the copy in step, the back sync's group that
// keeps the monolith's tables in step from the flip on (a rollback waits
// for it), and the components that must apply a phase before the proxy
// moves traffic for it.
func InventoryPlan() phase.Module {
	return phase.Module{
		Name:           "inventory",
		ReadRoutes:     "inventory",
		WriteRoutes:    "inventory-writes",
		Backfill:       []string{"inventory-products", "inventory-stock"},
		Verify:         "inventory",
		SyncGroup:      "inventory-service",
		SyncAggregates: []string{"product", "stock"},
		// The back sync follows the service's own topic.
		BackSyncGroup:      aclinv.BackSyncConsumer,
		BackSyncAggregates: []string{invdomain.AggregateType},
		Components:         []string{"monolith", "inventory-service"},
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

// OrdersPlan is the orders extraction in the toolkit's terms, the second
// plan through the same phases: reads (GET /api/orders) and writes are
// two proxy modules; the sync phase backfills the customers and prices
// the service's local read models need, then the orders themselves, which
// the forward sync (consumer group orders-service, on the order topic)
// imports into the service's event store and keeps in step; at the flip
// the service owns the writes and its back sync (consumer group
// monolith-orders-acl, which a rollback below the flip waits for) keeps
// the monolith's orders tables current for their remaining readers; at
// retire the
// monolith's order writes are switched off. The monolith and the orders
// service apply each phase before the proxy moves traffic for it.
func OrdersPlan() phase.Module {
	return phase.Module{
		Name:           "orders",
		ReadRoutes:     "orders",
		WriteRoutes:    "orders-writes",
		Backfill:       []string{"orders-customers", "orders-prices", aclorders.OrdersJob},
		Verify:         "orders",
		SyncGroup:      aclorders.ForwardConsumer,
		SyncAggregates: []string{aclorders.OrderAggregate},
		// The back sync follows the service's order events, on the same
		// topic as the monolith's.
		BackSyncGroup:      aclorders.BackSyncConsumer,
		BackSyncAggregates: []string{ordersdomain.AggregateType},
		Components:         []string{"monolith", "orders-service"},
	}
}

// OrdersBackfills snapshot the monolith's rows that the orders service
// needs, in order: the customers and catalog prices of its read models,
// then the orders, with their lines added by aclorders.LinesMap, which
// the shop registers as the job's mapping.
func OrdersBackfills() []backfill.Job {
	return append(aclorders.BackfillJobs(), aclorders.OrdersBackfillJob())
}

// OrdersChecks compare the monolith's orders with the service's read model
// of an order by id, with aclorders.VerifyRow as the source's row mapping,
// which the shop registers. serviceDSN is the service's database
// (services.orders.dsn).
func OrdersChecks(serviceDSN string) []verify.Check {
	return []verify.Check{aclorders.VerifyCheck(serviceDSN)}
}
