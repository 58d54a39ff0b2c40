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
// monolith's tables through the back sync.
package inventory

import (
	"context"
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

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/httpapi"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycle"
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

// Options are what the service needs besides its config.
type Options struct {
	// Brokers are the Kafka bootstrap brokers. If empty, the forward sync,
	// the relay and the back sync do not run (a service without events,
	// for tests of its HTTP APIs).
	Brokers []string
	// Kafka is the shared Kafka config (topic prefix, partitions).
	Kafka changefeed.KafkaConfig
	// Logger receives the log. If nil, slog.Default().
	Logger *slog.Logger
	// Now stamps changes. If nil, time.Now.
	Now func() time.Time
}

// Service is the running inventory service.
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
	maps   *aclinv.Mapper
	fwd    *aclinv.Forward

	life      lifecycle.Guard
	ready     chan struct{}
	readyOnce sync.Once
}

// New opens the database and builds the service. It opens no listener and
// starts no goroutine, and it does not migrate: Run listens, then migrates
// (Prepare) and starts the change-data parts.
func New(cfg Config, opt Options) (*Service, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inventory service config: %w", err)
	}
	opt.Kafka.SetDefaults("")
	log := opt.Logger
	gdb, err := db.Open(context.Background(), cfg.DSN, db.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("inventory service: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Service{cfg: cfg, opt: opt, log: log, gdb: gdb, ep: httpx.NewEndpoint(cfg.Addr), reg: reg, health: &httpx.Health{}, ready: make(chan struct{}),
		echo: httpx.NewEcho(log, reg, cfg.MaxBodyBytes)}
	s.core = service.New(gdb, opt.Now)
	s.maps = aclinv.NewMapper(gdb)
	s.fwd = aclinv.NewForward(s.core, s.maps, log.With("part", "forward-sync"))
	reg.MustRegister(s.fwd.Metrics()...)
	s.health.AddCheck("database", func(ctx context.Context) error {
		sqlDB, err := gdb.DB()
		if err != nil {
			return err
		}
		return sqlDB.PingContext(ctx)
	})
	s.health.Register(s.echo)
	aclinv.NewFacade(s.core, s.maps).Register(s.echo.Group("/api/inventory"))
	httpapi.Register(s.echo.Group("/v1"), s.core, httpx.BearerAuth("strangler-inventory", s.adminToken), saga.NewGuard(gdb))
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

// Forward is the forward sync, for its counts.
func (s *Service) Forward() *aclinv.Forward { return s.fwd }

// Owner reports whether the service owns the inventory.
func (s *Service) Owner() bool { return s.core.Owner() }

// SetOwner makes the service the owner of the inventory, taking writes, or
// a read replica refusing them; the choice is persisted.
func (s *Service) SetOwner(ctx context.Context, owner bool) error { return s.core.SetOwner(ctx, owner) }

// Prepare migrates the database and loads the persisted ownership. Run
// calls it; tests that serve Handler call it themselves.
func (s *Service) Prepare(ctx context.Context) error {
	if err := db.MigrateUp(ctx, s.cfg.DSN, Migrations()...); err != nil {
		return fmt.Errorf("inventory service: %w", err)
	}
	if err := s.core.LoadOwner(ctx); err != nil {
		return fmt.Errorf("inventory service: %w", err)
	}
	s.health.SetReady(true)
	s.readyOnce.Do(func() { close(s.ready) })
	return nil
}

// Ready is closed once Prepare has migrated the database and loaded the
// ownership: what changes ownership from outside (the phase watcher) waits
// for it, since the settings table may not exist before.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run listens and serves until ctx ends, with the forward sync, the relay of
// the service's outbox, the back sync (when configured) and the
// registration with the proxy, then stops them all, waits for them and
// closes the database. A port in use fails it at once.
func (s *Service) Run(ctx context.Context) error {
	if err := s.life.Run("inventory service"); err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			s.log.Error("close", "error", err)
		}
	}()
	ln, err := s.ep.Listen()
	if err != nil {
		return fmt.Errorf("inventory service: %w", err)
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
	if s.cfg.RegisterEnabled() && s.cfg.RegisterWith.AdminURL != "" {
		g.Go(func() error { s.register(gctx); return nil })
	}
	if len(s.opt.Brokers) > 0 {
		if s.cfg.Sync.Forward == nil || *s.cfg.Sync.Forward {
			c, err := s.ForwardConsumer()
			if err != nil {
				return err
			}
			g.Go(func() error { return c.Run(gctx) })
		}
		if s.cfg.Sync.Relay == nil || *s.cfg.Sync.Relay {
			r, err := relay.New(relay.Config{DSN: s.cfg.DSN, Name: Name},
				relay.Options{DB: s.gdb, Brokers: s.opt.Brokers, Kafka: s.opt.Kafka, Logger: s.log.With("part", "relay"), Registerer: s.reg})
			if err != nil {
				return fmt.Errorf("inventory service: relay: %w", err)
			}
			g.Go(func() error { return r.Run(gctx) })
		}
		if s.cfg.Sync.BackSyncDSN != "" {
			g.Go(func() error {
				return RunBackSync(gctx, s.cfg.Sync.BackSyncDSN, s.opt.Brokers, s.opt.Kafka, s.log.With("part", "back-sync"), s.reg)
			})
		}
	}
	<-gctx.Done()
	return g.Wait()
}

// ForwardConsumer builds the forward sync's consumer on the service's
// database.
func (s *Service) ForwardConsumer() (*consumer.Consumer, error) {
	c, err := consumer.New(aclinv.ForwardConfig(s.opt.Kafka.TopicPrefix), consumer.Options{
		DB: s.gdb, Brokers: s.opt.Brokers, Kafka: s.opt.Kafka, Logger: s.log.With("part", "forward-sync"), Registerer: s.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("inventory service: forward sync: %w", err)
	}
	s.fwd.Register(c)
	return c, nil
}

// RunBackSync applies the service's events to the monolith's tables in the
// database at monolithDSN until ctx ends. It migrates the inbox set into
// that database first.
func RunBackSync(ctx context.Context, monolithDSN string, brokers []string, kafka changefeed.KafkaConfig, log *slog.Logger, reg prometheus.Registerer) error {
	return servicekit.RunConsumerOn(ctx, monolithDSN, aclinv.BackSyncConfig, func(c *consumer.Consumer, mdb *gorm.DB) { aclinv.NewBackSync(mdb).Register(c) },
		consumer.Options{Brokers: brokers, Kafka: kafka, Logger: log, Registerer: reg})
}

// register keeps the service registered with the proxy's registry until
// ctx ends (RegisterConfig.Keep).
func (s *Service) register(ctx context.Context) { s.cfg.RegisterWith.Keep(ctx, s.log, s.Addr()) }

// adminToken is the proxy's admin token, which the service registers with
// and which PUT /v1/ownership requires (RegisterConfig.AdminToken).
func (s *Service) adminToken() string { return s.cfg.RegisterWith.AdminToken() }

// Close releases the database, for a service that is never run or whose
// Handler its caller serves. Run calls it as it returns; a second Close
// does nothing, and a Run after Close fails.
func (s *Service) Close() error {
	return s.life.Close(func() error { return db.Close(s.gdb) })
}
