package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

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
	ready  bool
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
	ready, checks := h.ready, h.checks
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
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "checks": status})
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
