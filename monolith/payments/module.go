// Package payments holds the shop's customer credit: it authorizes
// amounts against a customer's credit limit, voids them (the compensation
// of a saga step) and captures them when an order is paid, each exactly
// once per idempotency key.
//
// Other modules use it only through API (api.go). Everything else lives
// under internal/, where the compiler keeps other modules out.
package payments

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/payments/internal/httpapi"
	"github.com/stranglerkit/strangler/monolith/payments/internal/service"
)

// Name is the module's name, the segment of its API path and the name of its
// migration set.
const Name = "payments"

// DefaultCreditLimitCents is the credit limit of a customer without one of
// their own when Deps.CreditLimitCents is zero: 1,000.00 in the shop's
// currency.
const DefaultCreditLimitCents = 100_000

// Deps is what the module needs from the process.
type Deps struct {
	// DB is the shop's database, which holds the module's tables.
	DB *gorm.DB
	// Customers confirms that a customer exists.
	Customers customers.API
	// CreditLimitCents is the credit limit of every customer without one
	// of their own, existing customers included. If zero,
	// DefaultCreditLimitCents.
	CreditLimitCents int64
	// Now stamps changes. If nil, time.Now is used.
	Now func() time.Time
}

// Module is the payments module. It implements API.
type Module struct {
	*service.Service
}

var _ API = (*Module)(nil)

// New builds the module. It does not touch the database.
func New(d Deps) *Module {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.CreditLimitCents == 0 {
		d.CreditLimitCents = DefaultCreditLimitCents
	}
	return &Module{Service: service.New(d.DB, d.Customers, d.CreditLimitCents, d.Now)}
}

// Name is the module's name.
func (m *Module) Name() string { return Name }

// Routes mounts the module's HTTP API on g, the /api/payments group.
func (m *Module) Routes(g *echo.Group) { httpapi.Register(g, m.Service) }

// Start has nothing to start: the module does no background work.
func (m *Module) Start(context.Context) error { return nil }

// Stop has nothing to stop.
func (m *Module) Stop(context.Context) error { return nil }

// Migrations is the module's migration set, with its own version table
// schema_migrations_payments.
func Migrations() db.Migrations {
	return db.Migrations{Name: Name, FS: migrations.FS("monolith/" + Name)}
}
