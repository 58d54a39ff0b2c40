package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// HeaderRequestID carries the request ID between hops.
const HeaderRequestID = "X-Request-ID"

type requestIDKey struct{}

// RequestIDFrom returns the request ID that the RequestID middleware put in
// ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a random 128-bit ID in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidRequestID reports whether an incoming ID is safe to reuse: short, and
// made only of characters that cannot forge log lines or headers.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// RequestID reuses a valid incoming X-Request-ID, which the proxy in front
// sets, or makes a new one. It echoes the ID on the response and puts it in
// the request's context.
func RequestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			id := r.Header.Get(HeaderRequestID)
			if !ValidRequestID(id) {
				id = NewRequestID()
				r.Header.Set(HeaderRequestID, id)
			}
			c.Response().Header().Set(HeaderRequestID, id)
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
			return next(c)
		}
	}
}

// ModuleOf names the module that serves an API path, "/api/<module>/...",
// or "" for paths outside the API.
func ModuleOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/api/")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// routeOf is the route template echo matched, which keeps metric labels
// bounded; unmatched paths share one label.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

// AccessLog writes one JSON line per request with its ID, module, route,
// status and duration. It runs inside the error handler's reach, so the
// status is the one the client gets.
func AccessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			r := c.Request()
			status := c.Response().Status
			level := serverLevel(err, status)
			if quiet, _ := c.Get(quietKey).(bool); quiet && status < 400 {
				level = slog.LevelDebug
			}
			attrs := []slog.Attr{
				slog.String("request_id", RequestIDFrom(r.Context())),
				slog.String("module", ModuleOf(c.Path())),
				slog.String("route", routeOf(c)),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.Int64("bytes", c.Response().Size),
			}
			if err != nil && status >= 500 {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			log.LogAttrs(r.Context(), level, "request", attrs...)
			return nil
		}
	}
}

const quietKey = "httpx.quiet"

// Quiet marks a route's requests as routine polling, which AccessLog logs
// at debug level when they succeed: components that poll several times a
// second would otherwise fill the log. A failed poll keeps its level.
func Quiet() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set(quietKey, true)
			return next(c)
		}
	}
}

// Metrics records requests by route, method and status, and their latency by
// route and method, in reg.
func Metrics(reg prometheus.Registerer) echo.MiddlewareFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "HTTP request latency, by route template and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method"})
	reg.MustRegister(requests, latency)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route, method := routeOf(c), c.Request().Method
			requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
			latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// ErrorHandler returns echo's HTTPErrorHandler that writes every error as a
// problem document. Errors that are not problems or echo errors are 500s:
// the client gets a generic detail and the log gets the error.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := ToProblem(err)
		if p.Status >= 500 {
			log.Log(c.Request().Context(), serverLevel(err, p.Status), "request failed",
				"request_id", RequestIDFrom(c.Request().Context()), "route", routeOf(c), "error", err.Error())
		}
		p.Instance = c.Request().URL.Path
		p.RequestID = RequestIDFrom(c.Request().Context())
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(p.Status)
			return
		}
		c.Response().Header().Set(echo.HeaderContentType, ContentTypeProblem)
		_ = c.JSON(p.Status, p)
	}
}

// serverLevel is the log level of a request that ended with status and
// err: an error for a 500 or an unexpected error, a warning for a 5xx the
// handler chose (a Problem such as 503 not-ready while starting, or a 502
// from a dependency), and info below 500. Start-up probes then log no
// errors, and an error in the log is a fault to look at.
func serverLevel(err error, status int) slog.Level {
	switch {
	case status < 500:
		return slog.LevelInfo
	case status == http.StatusInternalServerError:
		return slog.LevelError
	}
	var p *Problem
	if errors.As(err, &p) {
		return slog.LevelWarn
	}
	return slog.LevelError
}

// ToProblem converts any error to the problem a client should see.
func ToProblem(err error) *Problem {
	var (
		p        *Problem
		he       *echo.HTTPError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &p):
		cp := *p
		return &cp
	case errors.As(err, &tooLarge):
		return TooLarge(tooLarge.Limit)
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return NewProblem(http.StatusNotFound, "not-found", "Not found", "no route matches this path")
		case http.StatusMethodNotAllowed:
			return NewProblem(http.StatusMethodNotAllowed, "", "", "this route does not accept this method")
		case http.StatusRequestEntityTooLarge:
			return NewProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large", "")
		}
		detail := ""
		if msg, ok := he.Message.(string); ok && he.Code < 500 {
			detail = msg
		}
		return NewProblem(he.Code, "", "", detail)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return NewProblem(499, "", "Client closed request", "")
	case errors.Is(err, context.DeadlineExceeded):
		return NewProblem(http.StatusServiceUnavailable, "timeout", "Timed out", "the request did not finish in time")
	default:
		return NewProblem(http.StatusInternalServerError, "", "", "an internal error occurred; the request ID finds it in the logs")
	}
}
