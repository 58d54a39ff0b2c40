package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// deadURL is the URL of a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	return "http://" + lifecycletest.FreeAddr(t)
}

// counting answers every request with status and counts them.
type counting struct {
	status int
	n      atomic.Int32
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	httpx.WriteProblem(w, r, httpx.NewProblem(c.status, "", "", "counted"))
}

func TestBreakerOpensAgainstADeadServerAndFailsFast(t *testing.T) {
	c := newClient(t, client.Config{BaseURL: deadURL(t), GetAttempts: 1, Breaker: client.BreakerConfig{Failures: 3, OpenFor: time.Minute}})
	ctx := context.Background()
	for i := range 3 {
		_, err := c.Stock(ctx, ref1)
		if !errors.Is(err, client.ErrUnavailable) || errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("call %d: %v, want a connection failure", i+1, err)
		}
	}
	if c.BreakerState() != "open" {
		t.Fatalf("breaker %s after 3 failures", c.BreakerState())
	}
	start := time.Now()
	_, err := c.Reserve(ctx, ref1, inventory.Move{Quantity: 1})
	took := time.Since(start)
	if !errors.Is(err, gobreaker.ErrOpenState) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("call on the open breaker: %v", err)
	}
	if took > 50*time.Millisecond {
		t.Errorf("the open breaker took %s to refuse", took)
	}
	t.Logf("open breaker refused in %s", took)
}

func TestBreakerCountsServerErrorsNotBusinessErrors(t *testing.T) {
	t.Run("5xx trips it, and no call reaches the service while open", func(t *testing.T) {
		h := &counting{status: http.StatusServiceUnavailable}
		c := newClient(t, client.Config{BaseURL: newServer(t, h).URL, GetAttempts: 1, Breaker: client.BreakerConfig{Failures: 3, OpenFor: time.Minute}})
		for range 5 {
			_, err := c.Warehouses(context.Background())
			if !errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("error %v", err)
			}
		}
		if got := h.n.Load(); got != 3 {
			t.Errorf("the service got %d calls, want 3", got)
		}
	})
	t.Run("half-open trial closes it again", func(t *testing.T) {
		h := &counting{status: http.StatusServiceUnavailable}
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h.n.Load() >= 2 {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"items":[]}`))
				h.n.Add(1)
				return
			}
			h.ServeHTTP(w, r)
		}))
		c := newClient(t, client.Config{BaseURL: srv.URL, GetAttempts: 1, Breaker: client.BreakerConfig{Failures: 2, OpenFor: 50 * time.Millisecond}})
		for range 2 {
			if _, err := c.Warehouses(context.Background()); err == nil {
				t.Fatal("the failing service succeeded")
			}
		}
		if c.BreakerState() != "open" {
			t.Fatalf("breaker %s", c.BreakerState())
		}
		time.Sleep(60 * time.Millisecond)
		if _, err := c.Warehouses(context.Background()); err != nil {
			t.Fatalf("trial call: %v", err)
		}
		if c.BreakerState() != "closed" {
			t.Errorf("breaker %s after a good trial", c.BreakerState())
		}
	})
	t.Run("business 4xx leave it closed", func(t *testing.T) {
		shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
		c := newClient(t, client.Config{BaseURL: shop.URL, Breaker: client.BreakerConfig{Failures: 2, OpenFor: time.Minute}})
		ctx := context.Background()
		for range 5 {
			if _, err := c.Reserve(ctx, ref1, inventory.Move{Quantity: 1000}); !errors.Is(err, inventory.ErrOutOfStock) {
				t.Fatalf("reserve: %v", err)
			}
			if _, err := c.Release(ctx, ref1, inventory.Move{Warehouse: "AMS1", Quantity: 1}); !errors.Is(err, inventory.ErrNotReserved) {
				t.Fatalf("release: %v", err)
			}
			if _, err := c.Reserve(ctx, ref1, inventory.Move{}); err == nil {
				t.Fatal("an invalid reservation succeeded")
			}
		}
		if c.BreakerState() != "closed" {
			t.Errorf("breaker %s after business errors", c.BreakerState())
		}
	})
}

// hanging holds every request until the test ends, counting them.
type hanging struct {
	n    atomic.Int32
	done chan struct{}
}

func (h *hanging) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.n.Add(1)
	select {
	case <-h.done:
	case <-r.Context().Done():
	}
}

func TestTimeoutAndRetries(t *testing.T) {
	h := &hanging{done: make(chan struct{})}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { close(h.done); srv.Close() })
	c := newClient(t, client.Config{BaseURL: srv.URL, Timeout: 100 * time.Millisecond, GetAttempts: 3, RetryBackoff: 10 * time.Millisecond, Breaker: client.BreakerConfig{Disabled: true}})

	start := time.Now()
	_, err := c.Reserve(context.Background(), ref1, inventory.Move{Quantity: 1})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("reserve: %v, want a timeout", err)
	}
	if took < 100*time.Millisecond || took > 500*time.Millisecond {
		t.Errorf("reserve timed out after %s, want about 100ms", took)
	}
	if got := h.n.Load(); got != 1 {
		t.Errorf("a reservation that reached the service was sent %d times", got)
	}

	h.n.Store(0)
	start = time.Now()
	_, err = c.Stock(context.Background(), ref1)
	took = time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stock: %v, want a timeout", err)
	}
	if got := h.n.Load(); got != 3 {
		t.Errorf("a read was tried %d times, want 3", got)
	}
	if took < 300*time.Millisecond || took > time.Second {
		t.Errorf("three reads took %s, want about 330ms", took)
	}

	t.Run("the caller's deadline wins and does not trip the breaker", func(t *testing.T) {
		c := newClient(t, client.Config{BaseURL: srv.URL, Breaker: client.BreakerConfig{Failures: 1, OpenFor: time.Minute}})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Stock(ctx, ref1)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("stock: %v", err)
		}
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("took %s", took)
		}
		if c.BreakerState() != "closed" {
			t.Errorf("breaker %s", c.BreakerState())
		}
	})
}

func TestWritesAreRetriedOnlyWhenNeverSent(t *testing.T) {
	shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
	t.Run("a dial error is retried on the next resolved instance", func(t *testing.T) {
		dead := deadURL(t)
		var mu sync.Mutex
		var resolved []string
		c := newClient(t, client.Config{Resolve: func(context.Context) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			u := dead
			if len(resolved) > 0 {
				u = shop.URL
			}
			resolved = append(resolved, u)
			return u, nil
		}})
		l, err := c.Reserve(context.Background(), ref2, inventory.Move{Quantity: 2, Reference: "order/7"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resolved) != 2 || resolved[0] != dead {
			t.Errorf("resolved %v", resolved)
		}
		if l.Reserved != 2 {
			t.Errorf("level %+v", l)
		}
	})
	t.Run("a 503 is not retried", func(t *testing.T) {
		h := &counting{status: http.StatusServiceUnavailable}
		c := newClient(t, client.Config{BaseURL: newServer(t, h).URL})
		_, err := c.Ship(context.Background(), ref1, inventory.Move{Warehouse: "AMS1", Quantity: 1})
		var ce *client.Error
		var p *httpx.Problem
		if !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &ce) || ce.Problem.Status != http.StatusServiceUnavailable || errors.As(err, &p) {
			t.Fatalf("ship: %v", err)
		}
		if got := h.n.Load(); got != 1 {
			t.Errorf("sent %d times", got)
		}
	})
	t.Run("a 503 read is retried", func(t *testing.T) {
		h := &counting{status: http.StatusBadGateway}
		c := newClient(t, client.Config{BaseURL: newServer(t, h).URL, RetryBackoff: time.Millisecond})
		if _, err := c.List(context.Background(), inventory.Query{}); !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("list: %v", err)
		}
		if got := h.n.Load(); got != client.DefaultGetAttempts {
			t.Errorf("sent %d times", got)
		}
	})
}

func TestPropagatesRequestIDAndTrace(t *testing.T) {
	shop := shoptest.New(t, dbtest.SQLiteDSN(t), shoptest.WithSeed())
	var mu sync.Mutex
	var got http.Header
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		shop.Handler().ServeHTTP(w, r)
	}))
	c := newClient(t, client.Config{BaseURL: srv.URL})

	// The request ID is the one the httpx middleware puts in a handler's
	// context, so the call is made from inside an echo handler.
	e := httpx.NewEcho(httpx.Discard, prometheus.NewRegistry(), 1<<20)
	tp := changefeed.NewTraceParent()
	var callErr error
	e.GET("/call", func(ec echo.Context) error {
		ctx := changefeed.WithTraceParent(ec.Request().Context(), tp.String())
		_, callErr = c.Stock(ctx, ref1)
		return nil
	})
	req := httptest.NewRequest(http.MethodGet, "/call", nil)
	req.Header.Set(httpx.HeaderRequestID, "order-req-42")
	e.ServeHTTP(httptest.NewRecorder(), req)
	if callErr != nil {
		t.Fatal(callErr)
	}
	mu.Lock()
	defer mu.Unlock()
	if id := got.Get(httpx.HeaderRequestID); id != "order-req-42" {
		t.Errorf("X-Request-ID %q", id)
	}
	sent, err := changefeed.ParseTraceParent(got.Get("traceparent"))
	if err != nil {
		t.Fatalf("traceparent %q: %v", got.Get("traceparent"), err)
	}
	if sent.TraceID != tp.TraceID || sent.SpanID == tp.SpanID {
		t.Errorf("traceparent %s for the caller's %s: want the same trace, a new span", sent, tp)
	}
}
