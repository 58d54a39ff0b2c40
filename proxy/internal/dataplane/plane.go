// Package dataplane is the proxy's data plane: the fasthttp server that
// forwards each request by the route table, the backends with their
// pools, health checks, breakers and retry budgets, the shadow copies and
// their comparison, WebSocket splices, the connection watchdog, the access
// log and the metrics. It is built on fasthttp for throughput: an
// immutable route table behind an atomic pointer, a precompiled trie
// matcher that does not allocate, metric children resolved per route when
// a table is built, and an access log written by its own goroutine.
//
// The package proxy wires it: the control plane hands it tables through
// Publish, the admin API reads it through Views.
package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/admin"
)

// Plane is the data plane: it serves client requests on the table last
// published.
type Plane struct {
	cfg      Config
	log      *slog.Logger
	server   *fasthttp.Server
	m        *metrics
	access   *accessLog
	shadow   *shadower
	services Services
	dog      *watchdog
	splices  spliceSet
	legacy   *legacyCheck
	clients  *clientLimits
	conns    *connMetrics
	maxConns int
	trusted  trustedNets
	internal *internalHeaders
	unrouted [6]prometheus.Counter
	dial     Dialer
	cohort   *cohortSigner
	// inv is the traffic inventory.
	inv *inventory
	// fbTotals counts fallbacks per module across table versions.
	fbTotals sync.Map // module → *atomic.Int64

	table atomic.Pointer[runtimeTable]

	// mu serializes the publication of tables with the start and end of
	// the health checks.
	mu sync.Mutex
	// health is the context of the backends' health checks while Run
	// runs, and nil before and after, so that no check runs outside Run.
	// Guarded by mu.
	health context.Context
	// healthWG counts the running health checkers.
	healthWG sync.WaitGroup
}

// New builds the data plane. It opens no listener and starts no
// goroutine, and serves nothing until the first Publish: every request
// gets 503 no-table before it, as on a replica of a shared control store
// that has not read a table yet. Close releases
// what it took (the access log file, the backends' pools).
func New(cfg Config) (*Plane, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	dial := cfg.Dial
	if dial == nil {
		dial = dialTCP
	}
	p := &Plane{cfg: cfg, log: log, m: newMetrics(), trusted: parseTrusted(cfg.TrustedProxies), dog: newWatchdog(), dial: dial, services: cfg.Services}
	p.inv = newInventory()
	p.m.reg.MustRegister(newInventoryCollector(p))
	p.internal = newInternalHeaders(cfg.InternalHeaders, cfg.UnderscoresInHeaders)
	p.cohort = newCohortSigner(cfg.CohortSecret)
	for i, c := range statusClasses {
		p.unrouted[i] = p.m.requests.WithLabelValues("none", "none", "none", c)
	}
	p.legacy = newLegacyCheck(p, cfg.LegacyCheckInterval)
	p.shadow = newShadower(p, cfg.Shadow)
	if e := cfg.AccessLog.Enabled; e == nil || *e {
		al, err := newAccessLog(cfg.AccessLog, cfg.AccessLogWriter, p.m.accessDrops)
		if err != nil {
			return nil, err
		}
		p.access = al
	}
	p.clients = &clientLimits{header: cfg.ReadHeaderTimeout, bodyIdle: cfg.BodyIdleTimeout, write: cfg.ClientWriteTimeout,
		writeTimeouts: p.m.rejected.WithLabelValues("client_write_timeout")}
	p.maxConns = connectionLimit(cfg.MaxConnections)
	p.server = p.newServer()
	retries := cfg.AcceptRetries
	if retries == nil {
		retries = func() int64 { return 0 }
	}
	p.conns = newConnMetrics(p.m.reg, p.clients, retries)
	p.table.Store(&runtimeTable{backends: map[string]*backend{}})
	return p, nil
}

// Run serves ln until ctx ends, with the background work the data plane
// needs meanwhile: the legacy check, the connection watchdog, the shadow
// workers, the backends' health checks and the access log's writer. Then
// it stops: WebSocket splices close, requests in flight get up to
// httpx.ShutdownTimeout to finish, ln closes, the shadow workers stop (a
// copy in flight gets up to shadow.timeout, under the watchdog, which
// stops after them) and the access log is flushed.
func (p *Plane) Run(ctx context.Context, ln net.Listener) error {
	bg, bgCancel := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	bgWG.Add(2)
	go func() { defer bgWG.Done(); p.legacy.run(bg) }()
	go func() { defer bgWG.Done(); p.dog.run(bg) }()
	// The shadow workers stop before the watchdog, which times out the
	// copies they have in flight.
	shadowCtx, shadowStop := context.WithCancel(context.Background())
	shadowDone := make(chan struct{})
	go func() { defer close(shadowDone); p.shadow.run(shadowCtx) }()
	p.mu.Lock()
	p.health = bg
	for _, b := range p.table.Load().backends {
		b.startHealth(bg, &p.healthWG)
	}
	p.mu.Unlock()
	if p.access != nil {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); p.access.run(bg) }()
	}
	err := p.serveUntil(ctx, ln)
	shadowStop()
	<-shadowDone
	bgCancel()
	bgWG.Wait()
	p.mu.Lock()
	p.health = nil
	p.mu.Unlock()
	p.healthWG.Wait()
	return err
}

// serveUntil serves ln until ctx ends or serving fails, then shuts the
// server down.
func (p *Plane) serveUntil(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- p.server.Serve(p.listener(ln)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("proxy: %w", err)
	case <-ctx.Done():
	}
	// WebSocket splices are long-lived, and no client would end one
	// within the shutdown timeout: they close now.
	p.splices.closeAll()
	sctx, scancel := context.WithTimeout(context.Background(), httpx.ShutdownTimeout)
	defer scancel()
	if err := p.server.ShutdownWithContext(sctx); err != nil {
		p.log.Warn("proxy shutdown did not finish in time", "error", err)
	}
	// fasthttp's Shutdown closes only the listeners Serve has
	// registered; a Serve that had not started yet would then serve
	// forever. Closing the listener ends it either way.
	_ = ln.Close()
	<-errc
	return nil
}

// Close releases what New took: the access log file and the backends'
// idle connections. It is for a Plane that will not Run, or has run.
func (p *Plane) Close() {
	if p.access != nil {
		p.access.close()
	}
	p.stopBackends()
}

func (p *Plane) stopBackends() {
	if t := p.table.Load(); t != nil {
		for _, b := range t.backends {
			b.stop()
		}
	}
}

func (p *Plane) backendEnv() backendEnv {
	return backendEnv{retryBudgetRatio: p.cfg.RetryBudgetRatio, log: p.log, m: p.m, watch: p.dog, dial: p.dial}
}

func (p *Plane) fallbackCounter(module string) *atomic.Int64 {
	v, _ := p.fbTotals.LoadOrStore(module, new(atomic.Int64))
	return v.(*atomic.Int64)
}

func (p *Plane) fallbackTotal(module string) int64 { return p.fallbackCounter(module).Load() }

// Metrics is the data plane's Prometheus registry, which the control
// plane and the admin API register their metrics on too.
func (p *Plane) Metrics() *prometheus.Registry { return p.m.reg }

// Version is the version of the table that serves.
func (p *Plane) Version() int64 { return p.table.Load().version }

// Views are the read-only views of the data plane for the admin API.
func (p *Plane) Views() admin.DataPlane { return views{p} }
