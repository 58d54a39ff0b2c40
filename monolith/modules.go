package monolith

import (
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/payments"
)

// Dependencies declares, in this one place, which modules each module may
// call through their api.go. The architecture test fails on any other
// dependency between modules, and docs/modules.md draws this graph.
//
// Inventory depends on the catalog only to confirm that a product exists
// before its first delivery; orders depend on the other three.
var Dependencies = map[string][]string{
	catalog.Name:   nil,
	customers.Name: nil,
	inventory.Name: {catalog.Name},
	orders.Name:    {catalog.Name, customers.Name, inventory.Name},
	payments.Name:  {customers.Name},
}

// moduleSet is the shop's modules, wired to each other.
type moduleSet struct {
	catalog   *catalog.Module
	customers *customers.Module
	inventory *inventory.Module
	orders    *orders.Module
	payments  *payments.Module
	// stock is the inventory.API that orders call: the inventory module,
	// until SetInventoryAPI points it at an extracted service.
	stock *inventorySwitch
}

// newModules builds the modules on gdb in dependency order; now stamps
// their changes, creditLimit is the payments module's default credit limit
// (0: its default).
func newModules(gdb *gorm.DB, now func() time.Time, creditLimit int64) *moduleSet {
	m := &moduleSet{}
	m.catalog = catalog.New(catalog.Deps{DB: gdb, Now: now})
	m.customers = customers.New(customers.Deps{DB: gdb, Now: now})
	m.inventory = inventory.New(inventory.Deps{DB: gdb, Catalog: m.catalog, Now: now})
	m.stock = newInventorySwitch(m.inventory)
	m.orders = orders.New(orders.Deps{DB: gdb, Catalog: m.catalog, Customers: m.customers, Inventory: m.stock, Now: now})
	m.payments = payments.New(payments.Deps{DB: gdb, Customers: m.customers, CreditLimitCents: creditLimit, Now: now})
	return m
}

// list returns the modules in dependency order, the order they start in.
func (m *moduleSet) list() []module {
	return []module{m.catalog, m.customers, m.inventory, m.orders, m.payments}
}

// buildModules constructs the modules in dependency order.
func (s *Shop) buildModules() []module {
	s.set = newModules(s.gdb, time.Now, s.cfg.CreditLimitCents)
	return s.set.list()
}

// Migrations lists the migration sets of the shop's database: the
// transactional outbox, which every module writes its events into, then
// the modules' sets in dependency order. Each set has its own version
// table, so a module's schema can move out with it.
func Migrations() []db.Migrations {
	return append([]db.Migrations{outbox.Migrations()}, ModuleMigrations()...)
}

// ModuleMigrations lists the modules' own migration sets, one per module,
// in dependency order.
func ModuleMigrations() []db.Migrations {
	return []db.Migrations{catalog.Migrations(), customers.Migrations(), inventory.Migrations(), orders.Migrations(), payments.Migrations()}
}
