// Package inventory is the extracted inventory service: its own process
// (`strangler service inventory`, 127.0.0.1:9101), its own database and
// migrations (migrations/inventory), a clean model of SKUs, warehouses,
// units on hand and reserved with a version for optimistic concurrency,
// and its own outbox whose events it publishes.
//
// It serves two APIs: its own under /v1, and the monolith's /api/inventory
// contract through the anti-corruption layer's facade (acl/inventory), so
// that the proxy can move the module's traffic to it without clients
// noticing. It starts as a read replica that the forward sync keeps in step
// with the monolith's change events, and refuses writes (409 not-owner)
// until the ownership flip makes it the owner (SetOwner, or PUT
// /v1/ownership with the proxy's admin token); from then on its own events flow back into the
// monolith's tables through the back sync. While it starts, until it has
// loaded its persisted ownership, both APIs answer 503 not-ready with
// Retry-After (servicekit's Ownership.Gate), which callers retry.
package inventory

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/httpapi"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/migrations"
	"github.com/stranglerkit/strangler/saga"
)

// Name is the service's name: its migration set, its event source and its
// consumer group.
const Name = domain.Source

// Migrations are the sets of the service's database: its own tables (with
// the version table schema_migrations_inventory_service), the outbox its
// events go through, the inbox of its forward sync, and the guard of the
// saga steps it takes part in (reservations and releases by idempotency
// key).
func Migrations() []db.Migrations {
	return []db.Migrations{
		{Name: Name, FS: migrations.FS("inventory"), Table: "schema_migrations_inventory_service"},
		outbox.Migrations(),
		consumer.Migrations(),
		saga.GuardMigrations(),
	}
}

// Options are what the service needs besides its config. If Brokers is
// empty, the forward sync, the relay and the back sync do not run (a
// service without events, for tests of its HTTP APIs).
type Options = servicekit.Options

// Service is the running inventory service: the extracted services'
// skeleton (servicekit.Base: Addr, Started, Handler, DB, Registry, Prepare,
// Ready, Run, Close) with the inventory's core, its ACL and forward sync.
type Service struct {
	*servicekit.Base
	core *service.Service
	maps *aclinv.Mapper
	fwd  *aclinv.Forward
}

// New opens the database and builds the service. It opens no listener and
// starts no goroutine, and it does not migrate: Run listens, then migrates
// (Prepare) and starts the forward sync, the relay of the service's
// outbox, the back sync (when configured) and the registration with the
// proxy.
func New(cfg Config, opt Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inventory service config: %w", err)
	}
	s := &Service{}
	base, err := servicekit.New(servicekit.Spec{Name: "inventory service", Source: Name, Addr: cfg.Addr, DSN: cfg.DSN, MaxBodyBytes: cfg.MaxBodyBytes,
		RegisterWith: cfg.RegisterWith, Relay: cfg.Sync.Relay, Migrations: Migrations(),
		Build: func(k servicekit.Kit) (servicekit.Parts, error) { return s.build(k, cfg, opt), nil }}, opt)
	if err != nil {
		return nil, err
	}
	s.Base = base
	return s, nil
}

// build builds the core, the ACL's mapper and forward sync on the kit and
// mounts the service's APIs: its own under /v1, guarded for PUT
// /v1/ownership by the proxy's admin token, and the monolith's contract.
func (s *Service) build(k servicekit.Kit, cfg Config, opt Options) servicekit.Parts {
	s.core = service.New(k.DB, opt.Now)
	s.maps = aclinv.NewMapper(k.DB)
	s.fwd = aclinv.NewForward(s.core, s.maps, k.Log.With("part", "forward-sync"))
	k.Registry.MustRegister(s.fwd.Metrics()...)
	// Both APIs answer 503 until Prepare has loaded the ownership (Gate).
	gate := s.core.Ownership().Gate()
	aclinv.NewFacade(s.core, s.maps).Register(k.Echo.Group("/api/inventory", gate))
	httpapi.Register(k.Echo.Group("/v1", gate), s.core, httpx.BearerAuth("strangler-inventory", k.AdminToken), saga.NewGuard(k.DB))
	return servicekit.Parts{
		LoadOwnership: s.core.LoadOwner,
		Consumers:     []servicekit.Consumer{{Name: "forward-sync", On: cfg.Sync.Forward, Config: aclinv.ForwardConfig, Register: s.fwd.Register}},
		BackSync: servicekit.BackSync{DSN: cfg.Sync.BackSyncDSN, Config: aclinv.BackSyncConfig,
			Register: func(c *consumer.Consumer, mdb *gorm.DB) { aclinv.NewBackSync(mdb).Register(c) }},
	}
}

// Forward is the forward sync, for its counts.
func (s *Service) Forward() *aclinv.Forward { return s.fwd }

// Owner reports whether the service owns the inventory.
func (s *Service) Owner() bool { return s.core.Owner() }

// SetOwner makes the service the owner of the inventory, taking writes, or
// a read replica refusing them; the choice is persisted.
func (s *Service) SetOwner(ctx context.Context, owner bool) error { return s.core.SetOwner(ctx, owner) }
