package servicekit

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

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycle"
)

// Options are what an extracted service needs besides its config.
type Options struct {
	// Brokers are the Kafka bootstrap brokers. If empty, the service's
	// consumers, its relay and its back sync do not run (a service without
	// events, for tests of its HTTP APIs or that fill its read models
	// themselves).
	Brokers []string
	// Kafka is the shared Kafka config (topic prefix, partitions).
	Kafka changefeed.KafkaConfig
	// Logger receives the log. If nil, slog.Default().
	Logger *slog.Logger
	// Now stamps the service's changes, orders and sagas. If nil,
	// time.Now.
	Now func() time.Time
	// BeforeLoad runs in Prepare between the migrations and the load of
	// the persisted ownership, so that tests can hold a started service
	// there, as a slow start-up would; an error fails Prepare. If nil,
	// nothing runs.
	BeforeLoad func(ctx context.Context) error
}

// Spec is what makes an extracted service of the skeleton Base: the
// settings Base uses from the service's config, and Build, which adds the
// service's own parts.
type Spec struct {
	// Name names the service in its errors: "inventory service".
	Name string
	// Source is the service's event source, the name of its outbox's relay.
	Source string
	// Addr is the HTTP listen address.
	Addr string
	// DSN is the service's own database.
	DSN string
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	// RegisterWith registers the service with the proxy, when it is On and
	// names an AdminURL.
	RegisterWith RegisterConfig
	// Relay runs the relay of the service's outbox. If nil, true.
	Relay *bool
	// Migrations are the sets Prepare migrates the database with.
	Migrations []db.Migrations
	// Build builds the service's core on the kit, mounts its routes and
	// returns its parts. New calls it once; an error closes the database.
	Build func(Kit) (Parts, error)
}

// Kit is what a service's Build builds on. It is handed to Build rather
// than exposed by Base, whose methods are the services' public API.
type Kit struct {
	// DB is the service's database, open but not migrated yet.
	DB *gorm.DB
	// Echo serves the service's HTTP APIs; /healthz, /readyz and /metrics
	// are mounted already.
	Echo *echo.Echo
	// Registry holds the service's metrics.
	Registry *prometheus.Registry
	// Log is the service's logger (Options.Logger or its default).
	Log *slog.Logger
	// AdminToken is the proxy's admin token (RegisterConfig.AdminToken),
	// which guards the service's /v1 admin APIs; "" closes them.
	AdminToken func() string
}

// Parts are what a service adds to the skeleton.
type Parts struct {
	// LoadOwnership loads the persisted ownership. Prepare calls it once
	// the database is migrated.
	LoadOwnership func(context.Context) error
	// Consumers consume into the service's database, each as its own
	// consumer group, when there are brokers.
	Consumers []Consumer
	// BackSync applies the service's events to the monolith's tables,
	// when there are brokers and its DSN is set.
	BackSync BackSync
	// Run are the service's other background parts, such as a saga
	// orchestrator; they run with or without brokers.
	Run []func(context.Context) error
	// Close releases what Build took besides the database. If nil, there
	// is nothing.
	Close func() error
}

// Consumer is a consumer on the service's own database.
type Consumer struct {
	// Name names the consumer's part in logs and errors: "forward-sync".
	Name string
	// On runs it. If nil, true.
	On *bool
	// Config is the consumer's config given the topic prefix.
	Config func(topicPrefix string) consumer.Config
	// Register adds the consumer's handlers.
	Register func(*consumer.Consumer)
}

// BackSync is a consumer on the monolith's database (RunConsumerOn).
type BackSync struct {
	// DSN is the monolith's database; if empty, no back sync runs.
	DSN string
	// Config is the consumer's config given the topic prefix.
	Config func(topicPrefix string) consumer.Config
	// Register adds the consumer's handlers, which write to mdb.
	Register func(c *consumer.Consumer, mdb *gorm.DB)
}

// Base is the skeleton of an extracted service, which embeds it: its
// listener, database, metrics and health, Prepare (migrations, then the
// ownership), Run with the background parts, and Close.
type Base struct {
	spec   Spec
	opt    Options
	log    *slog.Logger
	gdb    *gorm.DB
	ep     *httpx.Endpoint
	echo   *echo.Echo
	reg    *prometheus.Registry
	health *httpx.Health
	parts  Parts

	life      lifecycle.Guard
	ready     chan struct{}
	readyOnce sync.Once
}

// New opens the database and builds the service (spec.Build). It opens
// no listener, starts no goroutine and does not migrate: Run listens,
// then migrates (Prepare) and starts the background parts.
func New(spec Spec, opt Options) (*Base, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	opt.Kafka.SetDefaults("")
	log := opt.Logger
	gdb, err := db.Open(context.Background(), spec.DSN, db.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b := &Base{spec: spec, opt: opt, log: log, gdb: gdb, ep: httpx.NewEndpoint(spec.Addr), reg: reg, health: &httpx.Health{},
		echo: httpx.NewEcho(log, reg, spec.MaxBodyBytes), ready: make(chan struct{})}
	b.health.AddCheck("database", func(ctx context.Context) error {
		sqlDB, err := gdb.DB()
		if err != nil {
			return err
		}
		return sqlDB.PingContext(ctx)
	})
	b.health.Register(b.echo)
	if b.parts, err = spec.Build(Kit{DB: gdb, Echo: b.echo, Registry: reg, Log: log, AdminToken: spec.RegisterWith.AdminToken}); err != nil {
		_ = db.Close(gdb)
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	return b, nil
}

// Addr is the address the service listens on once Started is closed, the
// configured one before.
func (b *Base) Addr() string { return b.ep.Addr() }

// Started is closed once Run listens.
func (b *Base) Started() <-chan struct{} { return b.ep.Started() }

// Handler serves the service's HTTP APIs, for tests that serve it
// themselves.
func (b *Base) Handler() http.Handler { return b.echo }

// DB is the service's database.
func (b *Base) DB() *gorm.DB { return b.gdb }

// Registry holds the service's metrics.
func (b *Base) Registry() *prometheus.Registry { return b.reg }

// Prepare migrates the database and loads the persisted ownership; until
// it has, the services' APIs answer 503 not-ready (Ownership.Gate). Run
// calls it; tests that serve Handler call it themselves.
func (b *Base) Prepare(ctx context.Context) error {
	if err := db.MigrateUp(ctx, b.spec.DSN, b.spec.Migrations...); err != nil {
		return fmt.Errorf("%s: %w", b.spec.Name, err)
	}
	if b.opt.BeforeLoad != nil {
		if err := b.opt.BeforeLoad(ctx); err != nil {
			return fmt.Errorf("%s: %w", b.spec.Name, err)
		}
	}
	if err := b.parts.LoadOwnership(ctx); err != nil {
		return fmt.Errorf("%s: %w", b.spec.Name, err)
	}
	b.health.SetReady(true)
	b.readyOnce.Do(func() { close(b.ready) })
	return nil
}

// Ready is closed once Prepare has migrated the database and loaded the
// ownership: what changes ownership from outside (the phase watcher) waits
// for it, since the settings table may not exist before, and the forward
// and back syncs can run only from then.
func (b *Base) Ready() <-chan struct{} { return b.ready }

// Run listens and serves until ctx ends, with the service's background
// parts (Parts.Run, its consumers, the relay of its outbox, the back sync
// when configured) and the registration with the proxy, then stops them
// all, waits for them and closes the service (Close). A port in use fails
// it at once.
func (b *Base) Run(ctx context.Context) error {
	if err := b.life.Run(b.spec.Name); err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			b.log.Error("close", "error", err)
		}
	}()
	ln, err := b.ep.Listen()
	if err != nil {
		return fmt.Errorf("%s: %w", b.spec.Name, err)
	}
	return httpx.ServeWith(ctx, ln, b.echo, func(ctx context.Context) error {
		if err := b.Prepare(ctx); err != nil {
			return err
		}
		return b.runParts(ctx)
	})
}

// runParts runs the background parts until ctx ends.
func (b *Base) runParts(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range b.parts.Run {
		g.Go(func() error { return run(gctx) })
	}
	if rw := b.spec.RegisterWith; rw.On() && rw.AdminURL != "" {
		g.Go(func() error { rw.Keep(gctx, b.log, b.Addr()); return nil })
	}
	if len(b.opt.Brokers) > 0 {
		if err := b.runEvents(gctx, g); err != nil {
			return err
		}
	}
	<-gctx.Done()
	return g.Wait()
}

// runEvents starts the parts that need brokers on g: the consumers, the
// relay and the back sync.
func (b *Base) runEvents(ctx context.Context, g *errgroup.Group) error {
	for _, part := range b.parts.Consumers {
		if part.On != nil && !*part.On {
			continue
		}
		c, err := consumer.New(part.Config(b.opt.Kafka.TopicPrefix), consumer.Options{
			DB: b.gdb, Brokers: b.opt.Brokers, Kafka: b.opt.Kafka, Logger: b.log.With("part", part.Name), Registerer: b.reg,
		})
		if err != nil {
			return fmt.Errorf("%s: %s: %w", b.spec.Name, part.Name, err)
		}
		part.Register(c)
		g.Go(func() error { return c.Run(ctx) })
	}
	if b.spec.Relay == nil || *b.spec.Relay {
		r, err := relay.New(relay.Config{DSN: b.spec.DSN, Name: b.spec.Source},
			relay.Options{DB: b.gdb, Brokers: b.opt.Brokers, Kafka: b.opt.Kafka, Logger: b.log.With("part", "relay"), Registerer: b.reg})
		if err != nil {
			return fmt.Errorf("%s: relay: %w", b.spec.Name, err)
		}
		g.Go(func() error { return r.Run(ctx) })
	}
	if bs := b.parts.BackSync; bs.DSN != "" {
		g.Go(func() error {
			return RunConsumerOn(ctx, bs.DSN, bs.Config, bs.Register,
				consumer.Options{Brokers: b.opt.Brokers, Kafka: b.opt.Kafka, Logger: b.log.With("part", "back-sync"), Registerer: b.reg})
		})
	}
	return nil
}

// Close releases the service (Parts.Close) and its database, for a
// service that is never run or whose Handler its caller serves. Run calls
// it as it returns; a second Close does nothing, and a Run after Close
// fails.
func (b *Base) Close() error {
	return b.life.Close(func() error {
		var err error
		if b.parts.Close != nil {
			err = b.parts.Close()
		}
		return errors.Join(err, db.Close(b.gdb))
	})
}
