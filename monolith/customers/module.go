// Package customers keeps the shop's customers: a name, a unique email and a
// postal address.
//
// Other modules use it only through API (api.go). Everything else lives
// under internal/, where the compiler keeps other modules out.
package customers

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
	"github.com/stranglerkit/strangler/monolith/customers/internal/httpapi"
	"github.com/stranglerkit/strangler/monolith/customers/internal/service"
)

// Name is the module's name, the segment of its API path and the name of its
// migration set.
const Name = "customers"

// Deps is what the module needs from the process.
type Deps struct {
	// DB is the shop's database, which holds the module's tables.
	DB *gorm.DB
	// Now stamps changes. If nil, time.Now is used.
	Now func() time.Time
}

// Module is the customers module. It implements API.
type Module struct {
	*service.Service
}

var _ API = (*Module)(nil)

// New builds the module. It does not touch the database.
func New(d Deps) *Module {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Module{Service: service.New(d.DB, d.Now)}
}

// Name is the module's name.
func (m *Module) Name() string { return Name }

// Routes mounts the module's HTTP API on g, the /api/customers group.
func (m *Module) Routes(g *echo.Group) { httpapi.Register(g, m.Service) }

// Start has nothing to start: the module does no background work.
func (m *Module) Start(context.Context) error { return nil }

// Stop has nothing to stop.
func (m *Module) Stop(context.Context) error { return nil }

// Migrations is the module's migration set, with its own version table
// schema_migrations_customers.
func Migrations() db.Migrations {
	return db.Migrations{Name: Name, FS: migrations.FS("monolith/" + Name)}
}
