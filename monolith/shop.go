// Package monolith is "shop", the reference modular monolith that Strangler's
// guides take apart. Its modules (catalog, customers, orders, inventory,
// payments) each own their tables and migrations, and talk to each other
// only through the interfaces in their api.go. This file wires them into one process.
package monolith

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycle"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/payments"
)

// module is what the shop needs from each of its modules. Each module's
// module.go implements it.
type module interface {
	// Name is the module's name and the segment of its API path.
	Name() string
	// Routes mounts the module's handlers on /api/<name>.
	Routes(g *echo.Group)
	// Start begins background work, after migrations.
	Start(ctx context.Context) error
	// Stop ends it.
	Stop(ctx context.Context) error
}

// Shop is the running monolith.
type Shop struct {
	cfg     Config
	log     *slog.Logger
	gdb     *gorm.DB
	echo    *echo.Echo
	ep      *httpx.Endpoint
	health  *httpx.Health
	modules []module
	set     *moduleSet
	// retired holds, per module, whether its HTTP write path is off.
	retired map[string]*atomic.Bool

	life lifecycle.Guard
}

// New opens the database and builds the modules. It opens no listener and
// starts no goroutine, and it does not migrate: Run listens, then migrates,
// so that /healthz answers while it happens.
func New(cfg Config, log *slog.Logger) (*Shop, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("monolith config: %w", err)
	}
	gdb, err := db.Open(context.Background(), cfg.DSN, db.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("monolith: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Shop{
		cfg:    cfg,
		log:    log,
		gdb:    gdb,
		ep:     httpx.NewEndpoint(cfg.Addr),
		health: &httpx.Health{},
		echo:   httpx.NewEcho(log, reg, cfg.MaxBodyBytes),
	}
	s.modules = s.buildModules()
	s.health.AddCheck("database", func(ctx context.Context) error {
		sqlDB, err := gdb.DB()
		if err != nil {
			return err
		}
		return sqlDB.PingContext(ctx)
	})
	s.health.Register(s.echo)
	s.retired = map[string]*atomic.Bool{}
	for _, m := range s.modules {
		s.retired[m.Name()] = &atomic.Bool{}
	}
	// Not a group middleware: echo gives a group with middleware catch-all
	// routes, which would turn 405s into 404s.
	s.echo.Use(s.retiredWrites)
	api := s.echo.Group("/api")
	for _, m := range s.modules {
		m.Routes(api.Group("/" + m.Name()))
	}
	return s, nil
}

// retiredWrites refuses a module's HTTP writes once its write path is
// retired: its data is owned by an extracted service, and a write here
// would be a second, diverging source of truth.
func (s *Shop) retiredWrites(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		rest, ok := strings.CutPrefix(c.Request().URL.Path, "/api/")
		if !ok {
			return next(c)
		}
		module, _, _ := strings.Cut(rest, "/")
		if off, ok := s.retired[module]; ok && off.Load() {
			return httpx.Conflict("write-path-retired", "Write path retired",
				"the %s module's writes are retired here: the extracted service owns them; send them through the proxy", module)
		}
		return next(c)
	}
}

// RetireWrites switches a module's HTTP write path off (true) or back on,
// as at phase 5 of its extraction. Reads keep serving the module's tables,
// which the anti-corruption layer keeps in step.
func (s *Shop) RetireWrites(module string, retired bool) error {
	off, ok := s.retired[module]
	if !ok {
		return fmt.Errorf("retire writes: no module %q", module)
	}
	off.Store(retired)
	return nil
}

// Addr is the address the shop listens on once Started is closed, the
// configured one before.
func (s *Shop) Addr() string { return s.ep.Addr() }

// Started is closed once Run listens.
func (s *Shop) Started() <-chan struct{} { return s.ep.Started() }

// Handler serves the shop's HTTP API, for tests that skip the listener.
func (s *Shop) Handler() http.Handler { return s.echo }

// DB is the shop's database handle.
func (s *Shop) DB() *gorm.DB { return s.gdb }

// Catalog is the catalog module's API, for tools and tests that drive the
// shop in-process.
func (s *Shop) Catalog() catalog.API { return s.set.catalog }

// Customers is the customers module's API.
func (s *Shop) Customers() customers.API { return s.set.customers }

// Inventory is the inventory module's own API, whatever SetInventoryAPI
// points orders at.
func (s *Shop) Inventory() inventory.API { return s.set.inventory }

// Orders is the orders module's API.
func (s *Shop) Orders() orders.API { return s.set.orders }

// Payments is the payments module's API.
func (s *Shop) Payments() payments.API { return s.set.payments }

// InventoryAPI is the inventory.API that orders reserve, release and ship
// stock through now.
func (s *Shop) InventoryAPI() inventory.API { return s.set.stock.current() }

// SetInventoryAPI makes orders reserve, release and ship stock through api
// from the next call on, as at the ownership flip of an extracted inventory
// service; nil points them back at the inventory module. Calls in flight
// finish on the API they started with. The module's own /api/inventory
// routes keep serving its tables either way.
func (s *Shop) SetInventoryAPI(api inventory.API) { s.set.stock.set(api) }

// Prepare migrates the database, loads the seed data when configured and
// starts the modules. Run calls it; tests that drive Handler call it
// themselves.
func (s *Shop) Prepare(ctx context.Context) error {
	if err := db.MigrateUp(ctx, s.cfg.DSN, Migrations()...); err != nil {
		return fmt.Errorf("monolith: %w", err)
	}
	if s.cfg.SeedEnabled() {
		if err := Seed(ctx, s.gdb); err != nil {
			return fmt.Errorf("monolith: seed: %w", err)
		}
	}
	for _, m := range s.modules {
		if err := m.Start(ctx); err != nil {
			return fmt.Errorf("monolith: start %s: %w", m.Name(), err)
		}
	}
	s.health.SetReady(true)
	return nil
}

// Run listens, prepares and serves until ctx ends, then stops the modules
// and the server, waits for them, and closes the database. /readyz turns
// ready once Prepare has finished. A port in use fails it at once.
func (s *Shop) Run(ctx context.Context) error {
	if err := s.life.Run("monolith"); err != nil {
		return err
	}
	ln, err := s.ep.Listen()
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("monolith: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(ctx, ln, s.echo) }()
	err = s.Prepare(ctx)
	if err != nil {
		cancel()
	}
	serveErr := <-served
	stopCtx, stopCancel := context.WithTimeout(context.Background(), httpx.ShutdownTimeout)
	defer stopCancel()
	for i := len(s.modules) - 1; i >= 0; i-- {
		if e := s.modules[i].Stop(stopCtx); e != nil {
			s.log.Error("stop module", "module", s.modules[i].Name(), "error", e)
		}
	}
	if e := s.Close(); e != nil {
		s.log.Error("close", "error", e)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return serveErr
}

// Close releases the database, for a shop that is never run or whose
// Handler its caller serves. Run closes it as it returns; a second Close
// does nothing, and a Run after Close fails.
func (s *Shop) Close() error {
	return s.life.Close(func() error { return db.Close(s.gdb) })
}
