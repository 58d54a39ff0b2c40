// Package orders is the extracted orders service. Its orders are event
// sourced: each order's events, in the service's event store
// (eventsource), are its source of truth, and go out through the
// service's outbox; its read models (an order by id, orders by customer,
// orders by status) are projections of the store with tables of their own.
//
// So far the package holds the aggregate (domain, store), the read models
// (readmodel) and the database they live in; the service's process, its
// HTTP API and the saga of placing an order build on them.
package orders

import (
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/extracted/orders/store"
	"github.com/stranglerkit/strangler/migrations"
)

// Name is the service's name: its migration set and its event source.
const Name = domain.Source

// Migrations are the sets of the service's database: its read models'
// tables (version table schema_migrations_orders_service), the event store
// and the outbox its events go through.
func Migrations() []db.Migrations {
	return []db.Migrations{
		{Name: Name, FS: migrations.FS("orders"), Table: "schema_migrations_orders_service"},
		eventsource.Migrations(),
		outbox.Migrations(),
	}
}

// NewProjections returns the runner of the service's read models on its
// database gdb.
func NewProjections(gdb *gorm.DB, cfg eventsource.RunnerConfig, opt eventsource.RunnerOptions) (*eventsource.Runner, error) {
	es, err := store.NewEvents(gdb, store.Options{})
	if err != nil {
		return nil, err
	}
	return eventsource.NewRunner(es, cfg, opt, readmodel.Projections()...)
}
