// Package proxy is Strangler's routing proxy: the front door that users put
// before a live monolith to move its modules, one at a time, to extracted
// services. Each module's routes go to legacy, are shadowed to the
// candidate, split between them by sticky canary cohorts, or go to the
// candidate with legacy as the fallback. An admin API on its own listener
// changes the table atomically, persists and audits every change.
//
// The data plane (proxy/internal/dataplane) is built on fasthttp for
// throughput: an immutable route table behind an atomic pointer, a
// precompiled trie matcher that does not allocate, metric children
// resolved per route when a table is built, and an access log written by
// its own goroutine. The control plane (proxy/control) computes the table and keeps it, with the
// phases, the audit log and the service registry, in a control.Store; the
// admin API (proxy/admin) serves both; balancing policies are
// balance.Selectors (proxy/balance). Proxy wires them: New builds, Run
// listens and serves, Close releases. See docs/proxy.md.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/admin"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/filestore"
	"github.com/stranglerkit/strangler/proxy/internal/dataplane"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Proxy is a running proxy: the data plane, the admin API, and the
// machinery behind them.
type Proxy struct {
	cfg   Config
	log   *slog.Logger
	token string
	// lnMu guards ln, adminLn and closed: Run opens the listeners and
	// Close, from any goroutine, closes them.
	lnMu    sync.Mutex
	ln      *httpx.RetryListener
	adminLn net.Listener
	closed  bool
	// started is closed once Run has opened both listeners.
	started  chan struct{}
	admin    *echo.Echo
	registry *control.Registry
	// ctl is the control plane: the table's sources, the phases, the
	// audit log.
	ctl *control.Plane
	// dp is the data plane, which serves the table ctl publishes.
	dp *dataplane.Plane
	// store keeps the control state; ownStore says that New opened it,
	// so that Close closes it.
	store    control.Store
	ownStore bool
	// ctlCfg is how the proxy follows a shared store, defaulted.
	ctlCfg control.StoreConfig

	runOnce   sync.Once
	closeOnce sync.Once
}

// Dialer opens a connection to a backend instance at addr (host:port)
// within timeout: see WithDialer.
type Dialer = dataplane.Dialer

// HeaderShadow marks the copies sent to a candidate in shadow mode:
// "copy" for safe methods and "dry-run" for writes.
const HeaderShadow = dataplane.HeaderShadow

// Option adjusts a proxy for embedding and tests.
type Option func(*options)

type options struct {
	accessLog io.Writer
	initial   *routes.Doc
	dial      Dialer
	store     control.Store
	control   control.StoreConfig
}

// WithAccessLogWriter sends the access log to w instead of the configured
// path or standard error.
func WithAccessLogWriter(w io.Writer) Option { return func(o *options) { o.accessLog = w } }

// WithDialer connects to backend instances with d instead of a plain TCP
// dial, such as over in-memory pipes or through a counter. Every backend
// connection goes through it: requests, shadow copies, WebSockets, health
// and legacy checks. A nil d leaves the default.
func WithDialer(d Dialer) Option {
	return func(o *options) {
		if d != nil {
			o.dial = d
		}
	}
}

// WithStore keeps the control state (table, overrides, phases, audit
// log, service registrations) in s instead of the file store in
// Config.StateDir. The caller closes s after the proxy.
func WithStore(s control.Store) Option { return func(o *options) { o.store = s } }

// WithControlConfig sets how the proxy follows a shared store (the poll
// interval and the staleness bound of the config's control section); the
// DSN in it is the caller's to open, for WithStore.
func WithControlConfig(c control.StoreConfig) Option { return func(o *options) { o.control = c } }

// WithInitialTable starts the proxy on doc when there is neither a routes
// file nor a persisted table, instead of one catch-all route to legacy, so
// that an embedding program ships a table for the monolith it knows. The
// table is persisted and audited on first start like any change.
func WithInitialTable(doc *routes.Doc) Option { return func(o *options) { o.initial = doc } }

// New checks cfg and loads the route table (routes file, else persisted
// state, else a catch-all to legacy). It opens no listener and starts no
// goroutine: Run opens the listeners, so that a port in use fails there,
// and starts the health checks and the other background work. Close
// releases what New took (the access log file, the backends' pools). The
// admin token must be set: see EnsureToken.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Proxy, error) {
	if log == nil {
		log = slog.Default()
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	// A config the caller defaulted stays as it is; the zero fields of
	// one it did not get their defaults here.
	cfg.SetDefaults("")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	if cfg.AdminToken == "" {
		return nil, errors.New("proxy: no admin token: set proxy.admin_token or let EnsureToken create one")
	}
	cohort, err := cohortSecret(cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if o.store != nil && cfg.CohortSecret == "" {
		log.Info("cohort cookies are signed with the secret in " + cfg.CohortSecretFile + "; replicas of a shared store accept each other's only if they share it (proxy.cohort_secret)")
	}
	p := &Proxy{cfg: cfg, log: log, token: cfg.AdminToken, started: make(chan struct{})}
	p.store, p.ctlCfg = o.store, o.control
	p.ctlCfg.SetDefaults("")
	storeName := "the control store"
	if p.store == nil {
		fs, err := filestore.Open(cfg.StateDir)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		p.store, p.ownStore, storeName = fs, true, cfg.StateDir
	}
	// The registry tells the data plane of changed services only from
	// Register, Deregister and Run, all after New: p.dp is set by then.
	p.registry = control.NewRegistry(p.store, log, func(service string) { p.dp.ServicesChanged(service) })
	dp, err := dataplane.New(dataplane.Config{
		LegacyCheckInterval: cfg.LegacyCheckInterval, TrustedProxies: cfg.TrustedProxies, InternalHeaders: cfg.InternalHeaders,
		UnderscoresInHeaders: cfg.UnderscoresInHeaders, MaxBodyBytes: cfg.MaxBodyBytes, BufferBodyBytes: cfg.BufferBodyBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, BodyIdleTimeout: cfg.BodyIdleTimeout, ClientWriteTimeout: cfg.ClientWriteTimeout, IdleTimeout: cfg.IdleTimeout,
		MaxConnections: cfg.MaxConnections, RetryBudgetRatio: cfg.RetryBudgetRatio, Shadow: cfg.Shadow, AccessLog: cfg.AccessLog,
		CohortSecret: []byte(cohort), Log: log, AccessLogWriter: o.accessLog, Dial: o.dial, Services: p.registry, AcceptRetries: p.acceptRetries,
	})
	if err != nil {
		p.closeStore()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.dp = dp
	ctl, err := control.New(control.Config{RoutesFile: cfg.RoutesFile, Legacy: cfg.Legacy, Timeout: cfg.Timeout, Initial: o.initial, StoreName: storeName,
		PollInterval: p.ctlCfg.PollInterval, StaleAfter: p.ctlCfg.StaleAfter},
		p.store, dp, dp.Metrics(), log)
	if err != nil {
		dp.Close()
		p.closeStore()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.ctl = ctl
	p.admin = admin.New(admin.Config{Token: p.token, Log: log, Metrics: dp.Metrics(), Replicas: p.replicas, Usage: p.usage}, p.ctl, p.registry, fleetViews{dp.Views(), p})
	return p, nil
}

// listen opens both listeners for Run and then closes started. A port in
// use is an error that names the listener and the address; neither
// listener stays open then.
func (p *Proxy) listen() error {
	ln, err := httpx.Listen(p.cfg.Addr)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	adminLn, err := httpx.Listen(p.cfg.AdminAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("proxy admin: %w", err)
	}
	p.lnMu.Lock()
	defer p.lnMu.Unlock()
	if p.closed {
		_ = ln.Close()
		_ = adminLn.Close()
		return errors.New("proxy: closed while starting")
	}
	p.ln, p.adminLn = httpx.RetryAccept(ln, p.log), adminLn
	close(p.started)
	return nil
}

func (p *Proxy) acceptRetries() int64 {
	p.lnMu.Lock()
	defer p.lnMu.Unlock()
	if p.ln == nil {
		return 0
	}
	return p.ln.Retries()
}

// Close releases what New took, the access log file and the backends'
// idle connections, and the listeners of a Run in progress. It is for a
// proxy that will not Run, or has run: Run releases the same when it
// ends, and a Run after Close fails. Close may be called more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.runOnce.Do(func() {}) // a later Run fails
		p.lnMu.Lock()
		p.closed = true
		if p.ln != nil {
			_ = p.ln.Close()
		}
		if p.adminLn != nil {
			_ = p.adminLn.Close()
		}
		p.lnMu.Unlock()
		p.closeStore()
		p.dp.Close()
	})
	return nil
}

// closeStore closes the store if New opened it.
func (p *Proxy) closeStore() {
	if p.ownStore {
		if err := p.store.Close(); err != nil {
			p.log.Warn("closing the control store", "error", err)
		}
	}
}

// Started is closed once Run listens on both addresses, so that Addr and
// AdminAddr are the bound ones (a port 0 resolved). It is never closed if
// Run fails to listen or is not called.
func (p *Proxy) Started() <-chan struct{} { return p.started }

// Addr is the data plane's address: the bound one once Started is closed,
// the configured one before.
func (p *Proxy) Addr() string { a, _ := p.addrs(); return a }

// AdminAddr is the admin API's address: the bound one once Started is
// closed, the configured one before.
func (p *Proxy) AdminAddr() string { _, a := p.addrs(); return a }

func (p *Proxy) addrs() (data, admin string) {
	p.lnMu.Lock()
	defer p.lnMu.Unlock()
	data, admin = p.cfg.Addr, p.cfg.AdminAddr
	if p.ln != nil {
		data = p.ln.Addr().String()
	}
	if p.adminLn != nil {
		admin = p.adminLn.Addr().String()
	}
	return data, admin
}

// Registry is the proxy's Prometheus registry, served on the admin
// listener's /metrics.
func (p *Proxy) Registry() *prometheus.Registry { return p.dp.Metrics() }

// Version is the version of the table that serves.
func (p *Proxy) Version() int64 { return p.dp.Version() }

// Run opens both listeners, closes Started, and serves until ctx ends,
// then stops: the listeners close, requests in flight get up to
// httpx.ShutdownTimeout to finish, shadow workers stop (a copy in flight
// gets up to shadow.timeout) and the access log is flushed. A port in use
// fails Run at once, with what New took released.
func (p *Proxy) Run(ctx context.Context) error {
	ran := false
	p.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("proxy: Run called twice, or after Close")
	}
	if err := p.listen(); err != nil {
		_ = p.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	// The registry's expiry runs until the data plane, which it tells of
	// changed services, and the admin API have stopped.
	regCtx, regStop := context.WithCancel(context.Background())
	registryDone := make(chan struct{})
	go func() { defer close(registryDone); p.registry.Run(regCtx) }()
	g.Go(func() error { return p.ctl.WatchFile(gctx) })
	g.Go(func() error { return p.ctl.WatchStore(gctx) })
	g.Go(func() error { p.reportReplica(gctx); return nil })
	g.Go(func() error { p.runUsageFlush(gctx); return nil })
	g.Go(func() error { return p.dp.Run(gctx, p.ln) })
	g.Go(func() error { return httpx.Serve(gctx, p.adminLn, p.admin) })
	err := g.Wait()
	// The data plane has stopped: what it counted since the last flush
	// goes to the store before it closes.
	p.finalUsageFlush()
	regStop()
	<-registryDone
	_ = p.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
