// Package orders is the extracted orders service: its own process
// (`strangler service orders`, 127.0.0.1:9103), its own database and
// migrations (migrations/orders), and its own outbox and relay. Its orders
// are event sourced: each order's events, in the service's event store
// (eventsource), are its source of truth, and go out through the outbox;
// its read models (an order by id, orders by customer, orders by status)
// are projections of the store with tables of their own.
//
// It serves the monolith's /api/orders contract (httpapi) and, under /v1,
// the saga admin API (`strangler sagas --service http://127.0.0.1:9103/v1`)
// and the ownership switch. It serves reads from the start but refuses
// order writes (409 not-owner) until the ownership flip makes it the owner
// (SetOwner, or PUT /v1/ownership with the proxy's admin token), as the
// inventory service does; placements already started when ownership is
// taken away run to their end. While it starts, until it has loaded its
// persisted ownership, both APIs answer 503 not-ready with Retry-After
// (servicekit's Ownership.Gate).
// Placing an order is a saga (service.PlaceOrder) across the inventory
// service and the monolith's payments module; the customers and prices it
// needs are local read models fed by the monolith's events through the
// orders ACL, so that it makes no synchronous read call to the monolith.
package orders

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/httpapi"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/extracted/orders/store"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/migrations"
	"github.com/stranglerkit/strangler/saga"
)

// Name is the service's name: its migration set and its event source.
const Name = domain.Source

// Migrations are the sets of the service's database: its read models'
// tables (version table schema_migrations_orders_service), the event store,
// the outbox its events go through, the ACL's local read models and order
// ids, the saga log, and the inbox of its read models' consumer.
func Migrations() []db.Migrations {
	return []db.Migrations{
		{Name: Name, FS: migrations.FS("orders"), Table: "schema_migrations_orders_service"},
		eventsource.Migrations(),
		outbox.Migrations(),
		aclorders.Migrations(),
		saga.Migrations(),
		consumer.Migrations(),
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

// Options are what the service needs besides its config. If Brokers is
// empty, the read models' consumer, the forward sync, the relay and the
// back sync do not run (for tests that fill the read models themselves).
type Options = servicekit.Options

// Service is the running orders service: the extracted services' skeleton
// (servicekit.Base: Addr, Started, Handler, DB, Registry, Prepare, Ready,
// Run, Close) with the orders' core, the saga orchestrator, the
// projections and the forward sync.
type Service struct {
	*servicekit.Base
	core   *service.Service
	orch   *saga.Orchestrator
	runner *eventsource.Runner
	fwd    *aclorders.Forward
}

// New opens the database and builds the service. It opens no listener,
// starts no goroutine and does not migrate: Run listens, then migrates
// (Prepare) and starts the saga orchestrator (which first resumes every
// unfinished saga), the projections, the read models' consumer, the
// forward sync of the monolith's orders, the relay, the back sync (when
// configured) and the registration with the proxy.
func New(cfg Config, opt Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("orders service config: %w", err)
	}
	inv, err := service.NewInventory(cfg.InventoryURL, cfg.StepTimeout)
	if err != nil {
		return nil, fmt.Errorf("orders service: %w", err)
	}
	pay, err := service.NewPayments(cfg.PaymentsURL, cfg.StepTimeout)
	if err != nil {
		return nil, fmt.Errorf("orders service: %w", err)
	}
	s := &Service{}
	base, err := servicekit.New(servicekit.Spec{Name: "orders service", Source: Name, Addr: cfg.Addr, DSN: cfg.DSN, MaxBodyBytes: cfg.MaxBodyBytes,
		RegisterWith: cfg.RegisterWith, Relay: cfg.Sync.Relay, Migrations: Migrations(),
		Build: func(k servicekit.Kit) (servicekit.Parts, error) { return s.build(k, cfg, opt, inv, pay) }}, opt)
	if err != nil {
		return nil, err
	}
	s.Base = base
	return s, nil
}

// build builds the projections, the core and the orchestrator on the kit
// and mounts the monolith's /api/orders contract and, under /v1 and
// guarded by the proxy's admin token, the saga admin API and the ownership
// switch.
func (s *Service) build(k servicekit.Kit, cfg Config, opt Options, inv *service.Inventory, pay *service.Payments) (servicekit.Parts, error) {
	var err error
	if s.runner, err = NewProjections(k.DB, eventsource.RunnerConfig{}, eventsource.RunnerOptions{Registerer: k.Registry, Logger: k.Log.With("part", "projections"), Now: opt.Now}); err != nil {
		return servicekit.Parts{}, err
	}
	s.core, err = service.New(service.Config{DB: k.DB, Inventory: inv, Payments: pay, StepTimeout: cfg.StepTimeout, PlaceTimeout: cfg.PlaceTimeout,
		CompensationAttempts: cfg.CompensationAttempts,
		Logger:               k.Log, Now: opt.Now, Wake: s.runner.Wake})
	if err != nil {
		return servicekit.Parts{}, err
	}
	s.orch, err = saga.New(saga.Config{Store: saga.NewGormStore(k.DB), Definitions: []*saga.Definition{s.core.Definition()},
		Logger: k.Log.With("part", "sagas"), Metrics: k.Registry, Now: opt.Now})
	if err != nil {
		return servicekit.Parts{}, err
	}
	s.core.SetOrchestrator(s.orch)
	if s.fwd, err = aclorders.NewForward(k.DB, k.Log.With("part", "forward-sync")); err != nil {
		return servicekit.Parts{}, err
	}
	// Both APIs answer 503 until Prepare has loaded the ownership (Gate).
	gate := s.core.Ownership().Gate()
	httpapi.Register(k.Echo.Group("/api/orders", gate), s.core)
	v1 := k.Echo.Group("/v1", gate)
	saga.RegisterAdmin(v1, s.orch, k.AdminToken)
	servicekit.RegisterOwnership(v1, s.core.Ownership(), httpx.BearerAuth("strangler-orders", k.AdminToken))
	return servicekit.Parts{
		LoadOwnership: s.core.Ownership().Load,
		Consumers: []servicekit.Consumer{
			{Name: "read-models", On: cfg.Sync.ReadModels, Config: aclorders.ReadModelConfig, Register: s.core.RegisterReadModels},
			{Name: "forward-sync", On: cfg.Sync.Forward, Config: aclorders.ForwardConfig, Register: s.fwd.Register},
		},
		BackSync: servicekit.BackSync{DSN: cfg.Sync.BackSyncDSN, Config: aclorders.BackSyncConfig,
			Register: func(c *consumer.Consumer, _ *gorm.DB) { aclorders.NewBackSync().Register(c) }},
		Run:   []func(context.Context) error{s.orch.Run, s.runner.Run},
		Close: func() error { return errors.Join(s.orch.Close(), s.runner.Close()) },
	}, nil
}

// Core is the service's core, for tests that feed its read models.
func (s *Service) Core() *service.Service { return s.core }

// Forward is the forward sync of the monolith's orders, for its counts.
func (s *Service) Forward() *aclorders.Forward { return s.fwd }

// Orchestrator runs the placement sagas.
func (s *Service) Orchestrator() *saga.Orchestrator { return s.orch }

// Owner reports whether the service owns the orders and takes order
// writes.
func (s *Service) Owner() bool { return s.core.Ownership().Owner() }

// SetOwner makes the service the owner of the orders, taking writes, or a
// read replica refusing them; the choice is persisted.
func (s *Service) SetOwner(ctx context.Context, owner bool) error {
	return s.core.Ownership().SetOwner(ctx, owner)
}
