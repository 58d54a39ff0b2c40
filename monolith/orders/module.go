// Package orders takes the shop's orders: it places them (checking the
// customer and pricing from the catalog, then reserving stock and writing
// the order in one transaction) and moves them through their lifecycle,
// placed (10), paid (20), shipped (30) or cancelled (90), keeping the stock
// in step.
//
// It depends on the customers, catalog and inventory modules only through
// their API interfaces, which it is given. Everything else lives under
// internal/, where the compiler keeps other modules out.
package orders

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders/internal/httpapi"
	"github.com/stranglerkit/strangler/monolith/orders/internal/service"
)

// Name is the module's name, the segment of its API path and the name of its
// migration set.
const Name = "orders"

// Deps is what the module needs from the process.
type Deps struct {
	// DB is the shop's database, which holds the module's tables.
	DB *gorm.DB
	// Catalog prices order lines.
	Catalog catalog.API
	// Customers confirms the customer and gives the email orders copy.
	Customers customers.API
	// Inventory reserves, releases and ships stock. It is an interface so
	// that the shop can hand it a client of an extracted inventory service.
	Inventory inventory.API
	// Now stamps changes. If nil, time.Now is used.
	Now func() time.Time
}

// Module is the orders module. It implements API.
type Module struct {
	*service.Service
}

var _ API = (*Module)(nil)

// New builds the module. It does not touch the database.
func New(d Deps) *Module {
	if d.Now == nil {
		d.Now = time.Now
	}
	svc := service.New(d.DB, service.Deps{Catalog: d.Catalog, Customers: d.Customers, Inventory: d.Inventory}, d.Now)
	return &Module{Service: svc}
}

// Name is the module's name.
func (m *Module) Name() string { return Name }

// Routes mounts the module's HTTP API on g, the /api/orders group.
func (m *Module) Routes(g *echo.Group) { httpapi.Register(g, m.Service) }

// Start has nothing to start: orders do no background work.
func (m *Module) Start(context.Context) error { return nil }

// Stop has nothing to stop.
func (m *Module) Stop(context.Context) error { return nil }

// Migrations is the module's migration set, with its own version table
// schema_migrations_orders.
func Migrations() db.Migrations {
	return db.Migrations{Name: Name, FS: migrations.FS("monolith/" + Name)}
}
