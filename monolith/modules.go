package monolith

import (
	"context"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// Dependencies declares, in this one place, which modules each module may
// call through their api.go. The architecture test fails on any other
// dependency between modules.
var Dependencies = map[string][]string{
	"catalog":   nil,
	"customers": nil,
	"inventory": {"catalog"},
	"orders":    {"catalog", "customers", "inventory"},
}

// buildModules constructs the modules in dependency order.
// TODO(foundation): the modules land in the next commits.
func (s *Shop) buildModules() []module { return nil }

// Migrations lists the modules' migration sets in dependency order.
func Migrations() []db.Migrations { return nil }

// Seed loads the demo data set into an empty database.
func Seed(ctx context.Context, gdb *gorm.DB) error { return nil }
