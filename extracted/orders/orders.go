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
// taken away run to their end.
// Placing an order is a saga (service.PlaceOrder) across the inventory
// service and the monolith's payments module; the customers and prices it
// needs are local read models fed by the monolith's events through the
// orders ACL, so that it makes no synchronous read call to the monolith.
package orders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/httpapi"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/extracted/orders/store"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycle"
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

// Options are what the service needs besides its config.
type Options struct {
	// Brokers are the Kafka bootstrap brokers. If empty, the read models'
	// consumer and the relay do not run (for tests that fill the read
	// models themselves).
	Brokers []string
	// Kafka is the shared Kafka config (topic prefix, partitions).
	Kafka changefeed.KafkaConfig
	// Logger receives the log. If nil, slog.Default().
	Logger *slog.Logger
	// Now stamps orders and sagas. If nil, time.Now.
	Now func() time.Time
}

// Service is the running orders service.
type Service struct {
	cfg    Config
	opt    Options
	log    *slog.Logger
	gdb    *gorm.DB
	ep     *httpx.Endpoint
	echo   *echo.Echo
	reg    *prometheus.Registry
	health *httpx.Health
	core   *service.Service
	orch   *saga.Orchestrator
	runner *eventsource.Runner
	fwd    *aclorders.Forward

	life      lifecycle.Guard
	ready     chan struct{}
	readyOnce sync.Once
}

// New opens the database and builds the service. It opens no listener,
// starts no goroutine and does not migrate: Run listens, then migrates
// (Prepare) and starts the saga orchestrator, the projections, the read
// models' consumer and the relay.
func New(cfg Config, opt Options) (*Service, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("orders service config: %w", err)
	}
	opt.Kafka.SetDefaults("")
	log := opt.Logger
	inv, err := service.NewInventory(cfg.InventoryURL, cfg.StepTimeout)
	if err != nil {
		return nil, fmt.Errorf("orders service: %w", err)
	}
	pay, err := service.NewPayments(cfg.PaymentsURL, cfg.StepTimeout)
	if err != nil {
		return nil, fmt.Errorf("orders service: %w", err)
	}
	gdb, err := db.Open(context.Background(), cfg.DSN, db.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("orders service: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Service{cfg: cfg, opt: opt, log: log, gdb: gdb, ep: httpx.NewEndpoint(cfg.Addr), reg: reg, health: &httpx.Health{}, ready: make(chan struct{}),
		echo: httpx.NewEcho(log, reg, cfg.MaxBodyBytes)}
	fail := func(err error) (*Service, error) {
		_ = db.Close(gdb)
		return nil, fmt.Errorf("orders service: %w", err)
	}
	if s.runner, err = NewProjections(gdb, eventsource.RunnerConfig{}, eventsource.RunnerOptions{Registerer: reg, Logger: log.With("part", "projections"), Now: opt.Now}); err != nil {
		return fail(err)
	}
	s.core, err = service.New(service.Config{DB: gdb, Inventory: inv, Payments: pay, StepTimeout: cfg.StepTimeout, PlaceTimeout: cfg.PlaceTimeout,
		Logger: log, Now: opt.Now, Wake: s.runner.Wake})
	if err != nil {
		return fail(err)
	}
	s.orch, err = saga.New(saga.Config{Store: saga.NewGormStore(gdb), Definitions: []*saga.Definition{s.core.Definition()},
		Logger: log.With("part", "sagas"), Metrics: reg, Now: opt.Now})
	if err != nil {
		return fail(err)
	}
	s.core.SetOrchestrator(s.orch)
	if s.fwd, err = aclorders.NewForward(gdb, log.With("part", "forward-sync")); err != nil {
		return fail(err)
	}
	s.health.AddCheck("database", func(ctx context.Context) error {
		sqlDB, err := gdb.DB()
		if err != nil {
			return err
		}
		return sqlDB.PingContext(ctx)
	})
	s.health.Register(s.echo)
	httpapi.Register(s.echo.Group("/api/orders"), s.core)
	v1 := s.echo.Group("/v1")
	saga.RegisterAdmin(v1, s.orch, s.adminToken)
	servicekit.RegisterOwnership(v1, s.core.Ownership(), httpx.BearerAuth("strangler-orders", s.adminToken))
	return s, nil
}

// Addr is the address the service listens on once Started is closed, the
// configured one before.
func (s *Service) Addr() string { return s.ep.Addr() }

// Started is closed once Run listens.
func (s *Service) Started() <-chan struct{} { return s.ep.Started() }

// Handler serves the service's HTTP APIs, for tests that serve it
// themselves.
func (s *Service) Handler() http.Handler { return s.echo }

// DB is the service's database.
func (s *Service) DB() *gorm.DB { return s.gdb }

// Registry holds the service's metrics.
func (s *Service) Registry() *prometheus.Registry { return s.reg }

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

// Prepare migrates the database and loads the persisted ownership. Run
// calls it; tests that serve Handler call it themselves.
func (s *Service) Prepare(ctx context.Context) error {
	if err := db.MigrateUp(ctx, s.cfg.DSN, Migrations()...); err != nil {
		return fmt.Errorf("orders service: %w", err)
	}
	if err := s.core.Ownership().Load(ctx); err != nil {
		return fmt.Errorf("orders service: %w", err)
	}
	s.health.SetReady(true)
	s.readyOnce.Do(func() { close(s.ready) })
	return nil
}

// Ready is closed once Prepare has migrated the database and loaded the
// ownership: the phase watcher applies and acknowledges a phase only from
// then, when the settings table exists and the forward sync and the back
// sync can run.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run listens and serves until ctx ends, with the saga orchestrator (which
// first resumes every unfinished saga), the projections, the read models'
// consumer, the forward sync of the monolith's orders, the relay, the back
// sync (when configured) and the registration with the proxy, then stops them
// all, waits for them and closes the database. A port in use fails it at
// once.
func (s *Service) Run(ctx context.Context) error {
	if err := s.life.Run("orders service"); err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			s.log.Error("close", "error", err)
		}
	}()
	ln, err := s.ep.Listen()
	if err != nil {
		return fmt.Errorf("orders service: %w", err)
	}
	return httpx.ServeWith(ctx, ln, s.echo, func(ctx context.Context) error {
		if err := s.Prepare(ctx); err != nil {
			return err
		}
		return s.runParts(ctx)
	})
}

// runParts runs the background parts until ctx ends.
func (s *Service) runParts(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.orch.Run(gctx) })
	g.Go(func() error { return s.runner.Run(gctx) })
	if s.cfg.RegisterEnabled() && s.cfg.RegisterWith.AdminURL != "" {
		g.Go(func() error { s.register(gctx); return nil })
	}
	if len(s.opt.Brokers) > 0 {
		// The read models' consumer and the forward sync consume into the
		// service's database, each as its own consumer group.
		for _, part := range []struct {
			on       *bool
			name     string
			config   func(topicPrefix string) consumer.Config
			register func(*consumer.Consumer)
		}{
			{s.cfg.Sync.ReadModels, "read-models", aclorders.ReadModelConfig, s.core.RegisterReadModels},
			{s.cfg.Sync.Forward, "forward-sync", aclorders.ForwardConfig, s.fwd.Register},
		} {
			if part.on != nil && !*part.on {
				continue
			}
			c, err := consumer.New(part.config(s.opt.Kafka.TopicPrefix), consumer.Options{
				DB: s.gdb, Brokers: s.opt.Brokers, Kafka: s.opt.Kafka, Logger: s.log.With("part", part.name), Registerer: s.reg,
			})
			if err != nil {
				return fmt.Errorf("orders service: %s: %w", part.name, err)
			}
			part.register(c)
			g.Go(func() error { return c.Run(gctx) })
		}
		if s.cfg.Sync.Relay == nil || *s.cfg.Sync.Relay {
			r, err := relay.New(relay.Config{DSN: s.cfg.DSN, Name: Name},
				relay.Options{DB: s.gdb, Brokers: s.opt.Brokers, Kafka: s.opt.Kafka, Logger: s.log.With("part", "relay"), Registerer: s.reg})
			if err != nil {
				return fmt.Errorf("orders service: relay: %w", err)
			}
			g.Go(func() error { return r.Run(gctx) })
		}
		if dsn := s.cfg.Sync.BackSyncDSN; dsn != "" {
			g.Go(func() error {
				return servicekit.RunConsumerOn(gctx, dsn, aclorders.BackSyncConfig, func(c *consumer.Consumer, _ *gorm.DB) { aclorders.NewBackSync().Register(c) },
					consumer.Options{Brokers: s.opt.Brokers, Kafka: s.opt.Kafka, Logger: s.log.With("part", "back-sync"), Registerer: s.reg})
			})
		}
	}
	<-gctx.Done()
	return g.Wait()
}

// register keeps the service registered with the proxy's registry until
// ctx ends (inventory.RegisterConfig.Keep).
func (s *Service) register(ctx context.Context) { s.cfg.RegisterWith.Keep(ctx, s.log, s.Addr()) }

// adminToken is the proxy's admin token, which the service registers with
// and which the saga admin API and PUT /v1/ownership require; "" closes
// them.
func (s *Service) adminToken() string { return s.cfg.RegisterWith.AdminToken() }

// Close releases the database and the orchestrator's metrics, for a
// service that is never run or whose Handler its caller serves. Run calls
// it as it returns; a second Close does nothing.
func (s *Service) Close() error {
	return s.life.Close(func() error {
		return errors.Join(s.orch.Close(), s.runner.Close(), db.Close(s.gdb))
	})
}
