// Package proxy is Strangler's routing proxy: the front door that users put
// before a live monolith to move its modules, one at a time, to extracted
// services. Each module's routes go to legacy, are shadowed to the
// candidate, split between them by sticky canary cohorts, or go to the
// candidate with legacy as the fallback. An admin API on its own listener
// changes the table atomically, persists and audits every change.
//
// The data plane is built on fasthttp for throughput: an immutable route
// table behind an atomic pointer, a precompiled trie matcher that does not
// allocate, metric children resolved per route when a table is built, and
// an access log written by its own goroutine. See docs/proxy.md.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Proxy is a running proxy: the data plane, the admin API, and the
// machinery behind them.
type Proxy struct {
	cfg      Config
	log      *slog.Logger
	token    string
	ln       net.Listener
	adminLn  net.Listener
	server   *fasthttp.Server
	admin    *echo.Echo
	m        *metrics
	access   *accessLog
	shadow   *shadower
	registry *registry
	dog      *watchdog
	splices  spliceSet
	legacy   *legacyCheck
	clients  *clientLimits
	conns    *connMetrics
	maxConns int
	store    *store
	trusted  trustedNets
	internal *internalHeaders
	unrouted [6]prometheus.Counter
	// fbTotals counts fallbacks per module across table versions.
	fbTotals sync.Map // module → *atomic.Int64

	table atomic.Pointer[runtimeTable]

	// mu serializes table changes: admin calls, reloads and registry
	// updates of backends.
	mu sync.Mutex
	// ctl is the control state behind the table: source, overrides and
	// version. Guarded by mu.
	ctl control
	// phases are the modules' extraction phases. Guarded by mu.
	phases map[string]api.PhaseState
	// initial is the table to start on without a routes file or state.
	initial *routes.Doc
	// health is the context of the backends' health checks while Run
	// runs, and nil before and after, so that no check runs outside Run.
	// Guarded by mu.
	health context.Context
	// healthWG counts the running health checkers.
	healthWG sync.WaitGroup

	runOnce   sync.Once
	closeOnce sync.Once
}

// Option adjusts a proxy for embedding and tests.
type Option func(*options)

type options struct {
	accessLog io.Writer
	initial   *routes.Doc
}

// WithAccessLogWriter sends the access log to w instead of the configured
// path or standard error.
func WithAccessLogWriter(w io.Writer) Option { return func(o *options) { o.accessLog = w } }

// WithInitialTable starts the proxy on doc when there is neither a routes
// file nor a persisted table, instead of one catch-all route to legacy, so
// that an embedding program ships a table for the monolith it knows. The
// table is persisted and audited on first start like any change.
func WithInitialTable(doc *routes.Doc) Option { return func(o *options) { o.initial = doc } }

// New checks cfg, loads the route table (routes file, else persisted state,
// else a catch-all to legacy) and opens both listeners, so that a port in
// use fails here. It starts no goroutine: health checks and the other
// background work start in Run. Close releases what New took. The admin
// token must be set: see EnsureToken.
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
	p := &Proxy{cfg: cfg, log: log, token: cfg.AdminToken, m: newMetrics(), trusted: parseTrusted(cfg.TrustedProxies), dog: newWatchdog(), initial: o.initial}
	p.internal = newInternalHeaders(cfg.InternalHeaders, cfg.UnderscoresInHeaders)
	for i, c := range statusClasses {
		p.unrouted[i] = p.m.requests.WithLabelValues("none", "none", "none", c)
	}
	p.registry = newRegistry(p.servicesChanged)
	p.legacy = newLegacyCheck(p, cfg.LegacyCheckInterval)
	p.shadow = newShadower(p, cfg.Shadow)
	st, err := openStore(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.store = st
	if err := p.loadInitial(); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if *cfg.AccessLog.Enabled {
		al, err := newAccessLog(cfg.AccessLog, o.accessLog, p.m.accessDrops)
		if err != nil {
			p.stopBackends()
			return nil, fmt.Errorf("proxy: %w", err)
		}
		p.access = al
	}
	p.clients = &clientLimits{header: cfg.ReadHeaderTimeout, bodyIdle: cfg.BodyIdleTimeout}
	p.maxConns = connectionLimit(cfg.MaxConnections)
	p.server = p.newServer()
	p.admin = p.newAdmin()
	ln, err := httpx.Listen(cfg.Addr)
	if err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	retrying := httpx.RetryAccept(ln, log)
	p.ln = retrying
	p.conns = newConnMetrics(p.m.reg, p.clients, retrying)
	if p.adminLn, err = httpx.Listen(cfg.AdminAddr); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("proxy admin: %w", err)
	}
	return p, nil
}

// Close releases what New took: the listeners, the access log file and
// the backends' idle connections. It is for a proxy that will not Run, or
// has run: Run releases the same when it ends, and a Run after Close
// fails. Close may be called more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.runOnce.Do(func() {}) // a later Run fails
		if p.ln != nil {
			_ = p.ln.Close()
		}
		if p.adminLn != nil {
			_ = p.adminLn.Close()
		}
		if p.access != nil {
			p.access.close()
		}
		p.stopBackends()
	})
	return nil
}

func (p *Proxy) stopBackends() {
	if t := p.table.Load(); t != nil {
		for _, b := range t.backends {
			b.stop()
		}
	}
}

func (p *Proxy) fallbackCounter(module string) *atomic.Int64 {
	v, _ := p.fbTotals.LoadOrStore(module, new(atomic.Int64))
	return v.(*atomic.Int64)
}

func (p *Proxy) fallbackTotal(module string) int64 { return p.fallbackCounter(module).Load() }

// Addr is the data plane's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// AdminAddr is the admin API's address.
func (p *Proxy) AdminAddr() string { return p.adminLn.Addr().String() }

// Registry is the proxy's Prometheus registry, served on the admin
// listener's /metrics.
func (p *Proxy) Registry() *prometheus.Registry { return p.m.reg }

// Version is the version of the table that serves.
func (p *Proxy) Version() int64 { return p.table.Load().version }

func (p *Proxy) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      p.serve,
		ErrorHandler:                 p.serverError,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		StreamRequestBody:            true,
		LazyRequestTime:              true,
		DisablePreParseMultipartForm: true,
		MaxRequestBodySize:           p.cfg.BufferBodyBytes,
		// The header timeout is the watchdog's, from a request's first
		// byte (see requestBegins); a ReadTimeout here would restart
		// deadlines the phases are told apart by.
		IdleTimeout: p.cfg.IdleTimeout,
		// The listener refuses connections over max_connections with a
		// problem; fasthttp's own limit, which answers in plain text, stays
		// out of its way.
		Concurrency:           max(fasthttp.DefaultConcurrency, 2*p.maxConns),
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{p.log},
		ConnState:             connState,
		ExpectHandler:         p.expect,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			// A request without a Content-Type is forwarded without one.
			h.SetNoDefaultContentType(true)
			// The deadline set for this ends the header phase: the body
			// is read under body_idle_timeout (see SetReadDeadline).
			return fasthttp.RequestConfig{ReadTimeout: bodyTimeout}
		},
	}
}

// expect answers Expect: 100-continue. A body that its Content-Length
// already puts over max_body_bytes is refused with 413 at once, instead of
// being invited and then refused.
func (p *Proxy) expect(ctx *fasthttp.RequestCtx) int {
	if int64(ctx.Request.Header.ContentLength()) <= p.cfg.MaxBodyBytes {
		return fasthttp.StatusContinue
	}
	p.m.rejected.WithLabelValues("too_large").Inc()
	writeProblem(ctx, fasthttp.StatusRequestEntityTooLarge, problemSlug(fasthttp.StatusRequestEntityTooLarge), "",
		"the body exceeds the limit of "+strconv.FormatInt(p.cfg.MaxBodyBytes, 10)+" bytes", nil)
	return fasthttp.StatusRequestEntityTooLarge
}

// fasthttpLogger sends fasthttp's own messages to the structured log.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// serverError answers requests that fasthttp could not parse.
func (p *Proxy) serverError(ctx *fasthttp.RequestCtx, err error) {
	reason, status, detail := "malformed", fasthttp.StatusBadRequest, "the request could not be parsed"
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, errBareLF):
		reason, detail = "bare_lf", "a header line ends in a bare LF; HTTP/1.1 lines end in CRLF"
	case errors.Is(err, fasthttp.ErrDuplicateContentLength):
		reason, detail = "ambiguous_framing", "request has more than one Content-Length"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		reason, status, detail = "too_large", fasthttp.StatusRequestEntityTooLarge, "the request body is too large"
	case errors.As(err, &small):
		reason, status, detail = "headers_too_large", fasthttp.StatusRequestHeaderFieldsTooLarge, "the request headers are too large"
	case isTimeout(err):
		reason, status, detail = "timeout", fasthttp.StatusRequestTimeout, "the request was not received in time"
	}
	p.m.rejected.WithLabelValues(reason).Inc()
	writeProblem(ctx, status, problemSlug(status), "", detail, nil)
	ctx.SetConnectionClose()
}

// rejectBody answers a request whose body could not be read: 408 when the
// client stopped sending it for body_idle_timeout, else 400 with detail.
func (p *Proxy) rejectBody(st *reqState, err error, detail string) {
	if !isTimeout(err) {
		p.reject(st, "bad_body", detail)
		return
	}
	st.reason = reasonRejected
	p.m.rejected.WithLabelValues("body_timeout").Inc()
	p.problem(st, fasthttp.StatusRequestTimeout, problemSlug(fasthttp.StatusRequestTimeout), "Request timeout",
		"the request body stopped arriving for "+p.cfg.BodyIdleTimeout.String())
	st.ctx.SetConnectionClose()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func problemSlug(status int) string {
	switch status {
	case fasthttp.StatusRequestEntityTooLarge:
		return "too-large"
	case fasthttp.StatusRequestTimeout:
		return "timeout"
	}
	return "bad-request"
}

// problem writes an RFC 9457 problem as the answer to st.
func (p *Proxy) problem(st *reqState, status int, slug, title, detail string) {
	writeProblem(st.ctx, status, slug, title, detail, st.reqID)
}

func writeProblem(ctx *fasthttp.RequestCtx, status int, slug, title, detail string, reqID []byte) {
	pr := httpx.NewProblem(status, slug, title, detail)
	pr.Instance = string(ctx.URI().PathOriginal())
	pr.RequestID = string(reqID)
	body, err := json.Marshal(pr)
	if err != nil {
		body = []byte(`{"title":"error"}`)
	}
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(status)
	resp.Header.SetContentType(httpx.ContentTypeProblem)
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	if len(reqID) > 0 {
		resp.Header.SetBytesV("X-Request-Id", reqID)
	}
	resp.SetBody(body)
}

// Run serves until ctx ends, then stops: the listeners close, requests in
// flight get up to httpx.ShutdownTimeout to finish, shadow workers stop
// (a copy in flight gets up to shadow.timeout) and the access log is
// flushed.
func (p *Proxy) Run(ctx context.Context) error {
	ran := false
	p.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("proxy: Run called twice, or after Close")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	bg, bgCancel := context.WithCancel(context.Background())
	var bgWG sync.WaitGroup
	bgWG.Add(3)
	go func() { defer bgWG.Done(); p.legacy.run(bg) }()
	go func() { defer bgWG.Done(); p.dog.run(bg) }()
	go func() { defer bgWG.Done(); p.registry.run(bg) }()
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
	if p.cfg.RoutesFile != "" {
		g.Go(func() error { return p.watch(gctx) })
	}
	g.Go(func() error {
		errc := make(chan error, 1)
		go func() { errc <- p.server.Serve(p.listener(p.ln)) }()
		select {
		case err := <-errc:
			return fmt.Errorf("proxy: %w", err)
		case <-gctx.Done():
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
		_ = p.ln.Close()
		<-errc
		return nil
	})
	g.Go(func() error { return httpx.Serve(gctx, p.adminLn, p.admin) })
	err := g.Wait()
	shadowStop()
	<-shadowDone
	bgCancel()
	bgWG.Wait()
	p.mu.Lock()
	p.health = nil
	p.mu.Unlock()
	p.healthWG.Wait()
	_ = p.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
