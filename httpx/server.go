package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ShutdownTimeout bounds how long Serve waits for requests in flight after
// its context ends. It leaves room within the 10 s a process gets to stop.
const ShutdownTimeout = 5 * time.Second

// Listen opens a TCP listener on addr, with an error that names the address.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// RetryListener is a listener whose Accept waits and tries again after a
// temporary error, such as a process out of file descriptors (EMFILE),
// instead of returning it. fasthttp and kfake end their accept loops on any
// error that is not a timeout, which ended the proxy, and with it every
// component of `strangler up`, or left the broker deaf.
type RetryListener struct {
	net.Listener
	log     *slog.Logger
	retries atomic.Int64
	logged  atomic.Int64 // when the last warning was logged
	done    chan struct{}
	once    sync.Once
}

// Accept back-off bounds: the first wait after a temporary error, and the
// longest, as net/http's Server waits.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
	// acceptLogEvery spaces the warnings of a listener that keeps failing.
	acceptLogEvery = 10 * time.Second
)

// RetryAccept wraps ln. log, if not nil, is told when a run of temporary
// errors begins, at most every 10 s.
func RetryAccept(ln net.Listener, log *slog.Logger) *RetryListener {
	return &RetryListener{Listener: ln, log: log, done: make(chan struct{})}
}

// Accept returns the next connection, or a permanent error.
func (l *RetryListener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !TemporaryAcceptError(err) {
			return c, err
		}
		l.retries.Add(1)
		if wait == 0 {
			wait = acceptRetryMin
			if now := time.Now().UnixNano(); l.log != nil && now-l.logged.Load() > int64(acceptLogEvery) {
				l.logged.Store(now)
				l.log.Warn("accept failed; retrying", "addr", l.Addr().String(), "error", err, "retries", l.retries.Load())
			}
		} else {
			wait = min(2*wait, acceptRetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		case <-t.C:
		}
	}
}

// Close closes the listener and ends a wait between retries.
func (l *RetryListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Retries is how many accepts failed with a temporary error.
func (l *RetryListener) Retries() int64 { return l.retries.Load() }

// TemporaryAcceptError reports whether an accept error passes: the process
// or the system is out of descriptors, buffers or memory, or the
// connection was aborted or reset before it was accepted.
func TemporaryAcceptError(err error) bool {
	for _, e := range temporaryAccept {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var temporaryAccept = []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO}

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish for up to ShutdownTimeout, and
// returns nil. It returns an error only if serving fails.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// Health answers /healthz (the process is alive) and /readyz (every
// readiness check passes).
type Health struct {
	mu     sync.RWMutex
	checks []namedCheck
	infos  []namedInfo
	ready  bool
}

type namedInfo struct {
	name string
	fn   func() any
}

// AddInfo adds a field to the ready answer, such as the version a
// component serves: name is its key, fn its value.
func (h *Health) AddInfo(name string, fn func() any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.infos = append(h.infos, namedInfo{name, fn})
}

type namedCheck struct {
	name string
	fn   func(context.Context) error
}

// AddCheck adds a readiness check, such as a database ping.
func (h *Health) AddCheck(name string, fn func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, namedCheck{name, fn})
}

// SetReady marks start-up work, such as migrations, as done. Until then
// /readyz answers 503.
func (h *Health) SetReady(ready bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready = ready
}

// Register adds /healthz and /readyz to e.
func (h *Health) Register(e *echo.Echo) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", h.readyz)
}

func (h *Health) readyz(c echo.Context) error {
	h.mu.RLock()
	ready, checks, infos := h.ready, h.checks, h.infos
	h.mu.RUnlock()
	if !ready {
		return NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", "start-up has not finished")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	var failed []string
	for _, ch := range checks {
		if err := ch.fn(ctx); err != nil {
			status[ch.name] = err.Error()
			failed = append(failed, ch.name)
			continue
		}
		status[ch.name] = "ok"
	}
	if len(failed) > 0 {
		return NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", fmt.Sprintf("failing checks: %v", failed))
	}
	body := map[string]any{"status": "ready", "checks": status}
	for _, in := range infos {
		body[in.name] = in.fn()
	}
	return c.JSON(http.StatusOK, body)
}

// NewEcho returns an echo instance with Strangler's defaults: problem
// documents for errors, request IDs, a JSON access log, metrics in reg, a
// body limit, paths checked by CleanPath, /metrics, and no banner.
func NewEcho(log *slog.Logger, reg *prometheus.Registry, bodyLimit int64) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = ErrorHandler(log)
	e.Use(RequestID(), Metrics(reg), AccessLog(log), BodyLimit(bodyLimit), CleanPath())
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	return e
}

// Discard is a logger that writes nothing, for tests.
var Discard = slog.New(slog.DiscardHandler)

// ServeWith serves h on ln (Serve) and runs fn alongside, such as a
// service's migrations and background parts, until ctx ends or either
// fails, which stops the other. It returns the first failure; the end of
// ctx is none.
func ServeWith(ctx context.Context, ln net.Listener, h http.Handler, fn func(ctx context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return Serve(gctx, ln, h) })
	g.Go(func() error { return fn(gctx) })
	err := g.Wait()
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
