// Package client is the anti-corruption layer's way back into the monolith:
// an HTTP client of the legacy /api/inventory contract that implements
// inventory.API. At the ownership flip the shop hands it to the orders
// module (monolith.Shop.SetInventoryAPI), which then reserves, releases and
// ships stock in the extracted inventory service, through the proxy or at a
// URL that service discovery gives, without knowing it left the process.
//
// The client maps the contract's RFC 9457 problem documents back to the
// inventory module's sentinel errors, so callers branch with errors.Is
// exactly as they do on the local module. It guards the service with a
// circuit breaker that only failures of the service trip (transport errors,
// timeouts, 5xx), never business answers such as out of stock. It retries
// reads; it retries writes only when the connection was never made, since a
// reservation that reached the service must not be made twice.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/proxy/api"
)

// APIPrefix is the path of the legacy inventory contract below the base
// URL.
const APIPrefix = "/api/inventory"

// Defaults of Config.
const (
	DefaultTimeout      = 2 * time.Second
	DefaultGetAttempts  = 3
	DefaultRetryBackoff = 50 * time.Millisecond
	DefaultFailures     = 5
	DefaultOpenFor      = 5 * time.Second
	// maxBody bounds the responses the client reads: the largest, a page
	// of 100 levels, is about 20 KiB.
	maxBody = 4 << 20
)

// ErrUnavailable matches every error of a call that the service could not
// answer: it could not be reached, it timed out, it answered 5xx, or the
// breaker is open and the call was not even tried. Business errors (the
// inventory sentinels) and invalid input never match it.
var ErrUnavailable = errors.New("inventory service unavailable")

// Config configures a Client.
type Config struct {
	// BaseURL is where the contract is served, without /api/inventory:
	// the proxy ("http://127.0.0.1:8080") or the service itself. Resolve
	// takes precedence when set.
	BaseURL string
	// Resolve returns the base URL for each attempt, so that service
	// discovery can feed it and a retry can go to another instance.
	Resolve func(ctx context.Context) (string, error)
	// Timeout bounds each attempt, connection included (default 2 s).
	Timeout time.Duration
	// GetAttempts is how many times a read is tried in all (default 3; 1
	// disables retries).
	GetAttempts int
	// RetryBackoff is the pause before the first retry, doubled before
	// each further one (default 50 ms).
	RetryBackoff time.Duration
	// Breaker configures the circuit breaker.
	Breaker BreakerConfig
	// HTTPClient sends the requests. The default keeps up to 64 idle
	// connections to the service alive and dials within Timeout; its own
	// Timeout should stay 0, since the client bounds each attempt.
	HTTPClient *http.Client
	// Log receives the breaker's state changes (default slog.Default()).
	Log *slog.Logger
}

// BreakerConfig configures the circuit breaker.
type BreakerConfig struct {
	// Name labels the breaker in logs (default "inventory").
	Name string
	// Failures is how many consecutive failed attempts open the breaker
	// (default 5).
	Failures uint32
	// OpenFor is how long the breaker stays open before it lets trial
	// calls through (default 5 s).
	OpenFor time.Duration
	// HalfOpenRequests is how many trial calls may run at once, and must
	// succeed in a row to close it again (default 1).
	HalfOpenRequests uint32
	// Disabled turns the breaker off.
	Disabled bool
}

// Client implements inventory.API over HTTP. It is safe for concurrent use.
type Client struct {
	resolve  func(ctx context.Context) (string, error)
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	hc       *http.Client
	breaker  *gobreaker.CircuitBreaker[*http.Response]
	log      *slog.Logger
}

var _ inventory.API = (*Client)(nil)

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	c := &Client{timeout: cfg.Timeout, attempts: cfg.GetAttempts, backoff: cfg.RetryBackoff, hc: cfg.HTTPClient, log: cfg.Log}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.timeout < 0 {
		return nil, fmt.Errorf("inventory client: timeout %s is negative", cfg.Timeout)
	}
	if c.attempts == 0 {
		c.attempts = DefaultGetAttempts
	}
	if c.attempts < 0 {
		return nil, fmt.Errorf("inventory client: %d attempts", cfg.GetAttempts)
	}
	if c.backoff == 0 {
		c.backoff = DefaultRetryBackoff
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	switch {
	case cfg.Resolve != nil:
		c.resolve = cfg.Resolve
	case cfg.BaseURL != "":
		if _, err := parseBase(cfg.BaseURL); err != nil {
			return nil, fmt.Errorf("inventory client: %w", err)
		}
		base := cfg.BaseURL
		c.resolve = func(context.Context) (string, error) { return base, nil }
	default:
		return nil, errors.New("inventory client: neither BaseURL nor Resolve is set")
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport(c.timeout)}
	}
	if !cfg.Breaker.Disabled {
		c.breaker = newBreaker(cfg.Breaker, c.log)
	}
	return c, nil
}

// newTransport returns a transport that keeps enough connections to the one
// service alive for an orders module under load, and that marks failures to
// connect, the one case in which a write provably never reached the
// service.
func newTransport(timeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

func newBreaker(bc BreakerConfig, log *slog.Logger) *gobreaker.CircuitBreaker[*http.Response] {
	if bc.Name == "" {
		bc.Name = "inventory"
	}
	if bc.Failures == 0 {
		bc.Failures = DefaultFailures
	}
	if bc.OpenFor == 0 {
		bc.OpenFor = DefaultOpenFor
	}
	return gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        bc.Name,
		MaxRequests: bc.HalfOpenRequests,
		Timeout:     bc.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= bc.Failures },
		// A call the caller gave up on says nothing about the service.
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Warn("inventory client: circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
	})
}

// BreakerState is the breaker's state: "closed", "half-open" or "open"
// ("disabled" without a breaker).
func (c *Client) BreakerState() string {
	if c.breaker == nil {
		return "disabled"
	}
	return c.breaker.State().String()
}

// List returns a page of stock levels.
func (c *Client) List(ctx context.Context, q inventory.Query) (inventory.Page, error) {
	v := url.Values{}
	if q.Warehouse != "" {
		v.Set("warehouse", q.Warehouse)
	}
	if q.InStock != nil {
		v.Set("in_stock", strconv.FormatBool(*q.InStock))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out inventory.Page
	return out, c.call(ctx, http.MethodGet, "/stock", v, nil, &out)
}

// Stock returns a product's levels in every warehouse.
func (c *Client) Stock(ctx context.Context, ref string) (inventory.ProductStock, error) {
	var out inventory.ProductStock
	if err := checkRef(ref); err != nil {
		return out, err
	}
	return out, c.call(ctx, http.MethodGet, "/stock/"+url.PathEscape(ref), nil, nil, &out)
}

// Warehouses returns the shop's warehouses.
func (c *Client) Warehouses(ctx context.Context) ([]inventory.Warehouse, error) {
	var out struct {
		Items []inventory.Warehouse `json:"items"`
	}
	if err := c.call(ctx, http.MethodGet, "/warehouses", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Adjust adds or removes units on hand.
func (c *Client) Adjust(ctx context.Context, ref string, a inventory.Adjustment) (inventory.Level, error) {
	return c.write(ctx, ref, "adjustments", a)
}

// Reserve holds units for an order.
func (c *Client) Reserve(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	return c.write(ctx, ref, "reservations", m)
}

// ReserveAll makes the reservations one by one, as the service's API has
// no batch, and stops at the first that fails, returning the levels of
// those before it for the caller to release. It checks every reservation
// first, as the module does, so that an invalid one reserves nothing.
func (c *Client) ReserveAll(ctx context.Context, rs []inventory.Reservation) ([]inventory.Level, error) {
	for _, r := range rs {
		if err := checkRef(r.ProductRef); err != nil {
			return nil, err
		}
		if err := r.Validate(false); err != nil {
			return nil, err
		}
	}
	out := make([]inventory.Level, 0, len(rs))
	for _, r := range rs {
		l, err := c.Reserve(ctx, r.ProductRef, r.Move)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Release returns reserved units to available.
func (c *Client) Release(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	return c.write(ctx, ref, "releases", m)
}

// Ship takes reserved units off hand.
func (c *Client) Ship(ctx context.Context, ref string, m inventory.Move) (inventory.Level, error) {
	return c.write(ctx, ref, "shipments", m)
}

func (c *Client) write(ctx context.Context, ref, what string, in any) (inventory.Level, error) {
	var out inventory.Level
	if err := checkRef(ref); err != nil {
		return out, err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return out, fmt.Errorf("inventory client: encode %s: %w", what, err)
	}
	return out, c.call(ctx, http.MethodPost, "/stock/"+url.PathEscape(ref)+"/"+what, nil, body, &out)
}

// checkRef rejects a reference that is not one, as the module does, before
// it becomes a path segment that could name another route.
func checkRef(ref string) error {
	if _, err := catalog.ParseProductRef(ref); err != nil {
		return httpx.BadRequest("%s", err.Error())
	}
	return nil
}

// errCallerGone marks an attempt that ended because the caller's context
// did, which must neither trip the breaker nor be retried.
var errCallerGone = errors.New("the caller's context ended")

// dialError marks a failure to connect: nothing was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// neverSent reports whether err proves that the request did not reach the
// server: the connection could not be made.
func neverSent(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// serverError is a 5xx answer, a failure of the service for the breaker.
type serverError struct{ resp *http.Response }

func (e *serverError) Error() string { return e.resp.Status }

// call sends one request, with retries as the method allows, and decodes a
// 2xx JSON body into out or maps the error answer.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	var lastErr error
	pause := c.backoff
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, method, path, query, body)
		if err == nil {
			return decode(method, path, resp, out)
		}
		lastErr = err
		if attempt >= c.attempts || !c.retryable(method, err) || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return c.failure(method, path, lastErr)
		case <-t.C:
		}
		pause *= 2
	}
	return c.failure(method, path, lastErr)
}

// retryable reports whether a failed attempt may be tried again: a read
// whenever the service failed, a write only when it was never sent.
func (c *Client) retryable(method string, err error) bool {
	if errors.Is(err, errCallerGone) || errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return false
	}
	if method == http.MethodGet {
		return true
	}
	return neverSent(err)
}

// failure turns the last attempt's error into the call's.
func (c *Client) failure(method, path string, err error) error {
	var se *serverError
	if errors.As(err, &se) {
		return problemError(method, path, se.resp)
	}
	if errors.Is(err, errCallerGone) {
		return fmt.Errorf("inventory client: %s %s: %w", method, APIPrefix+path, err)
	}
	return fmt.Errorf("inventory client: %s %s: %w: %w", method, APIPrefix+path, ErrUnavailable, err)
}

// attempt sends the request once through the breaker. A response it returns
// has a status below 500, its body read whole; 5xx answers come back as
// *serverError.
func (c *Client) attempt(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Response, error) {
	send := func() (*http.Response, error) { return c.send(ctx, method, path, query, body) }
	if c.breaker == nil {
		return send()
	}
	return c.breaker.Execute(send)
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Response, error) {
	base, err := c.resolve(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve the service's URL: %w", err)
	}
	u, err := parseBase(base)
	if err != nil {
		return nil, err
	}
	u.Path += APIPrefix + path
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, "+httpx.ContentTypeProblem)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if id := httpx.RequestIDFrom(ctx); id != "" {
		req.Header.Set(httpx.HeaderRequestID, id)
	}
	if tp, err := changefeed.ParseTraceParent(changefeed.TraceParentFrom(ctx)); err == nil {
		// The call is a span of its own in the caller's trace.
		req.Header.Set("traceparent", tp.Child().String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errCallerGone, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", errCallerGone, err)
		}
		return nil, fmt.Errorf("read the response: %w", err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("the response is larger than %d bytes", maxBody)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if resp.StatusCode >= 500 {
		return nil, &serverError{resp: resp}
	}
	return resp, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("base URL %q is not an http(s) URL", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// decode reads a 2xx answer into out, or maps a 4xx one.
func decode(method, path string, resp *http.Response, out any) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return problemError(method, path, resp)
	}
	// Tolerant reader: unknown fields are ignored, so the service may add
	// to its answers without breaking the monolith.
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("inventory client: %s %s: decode the %d answer: %w", method, APIPrefix+path, resp.StatusCode, err)
	}
	return nil
}

// sentinels maps the contract's problem types, by slug, to the module's
// errors.
var sentinels = map[string]error{
	"not-found":         inventory.ErrNotFound,
	"out-of-stock":      inventory.ErrOutOfStock,
	"not-reserved":      inventory.ErrNotReserved,
	"below-reserved":    inventory.ErrBelowReserved,
	"unknown-warehouse": inventory.ErrUnknownWarehouse,
	"unknown-product":   inventory.ErrUnknownProduct,
}

// Error is an error answer of the service that callers branch on: an
// inventory business error, which matches the module's sentinel with
// errors.Is and reads as the problem's detail just as the local module's
// error does, or a 5xx answer, which matches ErrUnavailable. Problem holds
// the whole answer. The problem is deliberately not in the error chain, so
// that a caller such as the orders module handles these errors as it
// handles the local module's, and does not pass the service's problem on
// to its own clients.
type Error struct {
	// Method and Path are the request's, such as "POST" and
	// "/api/inventory/stock/P-000042/reservations".
	Method, Path string
	Problem      *httpx.Problem
	sentinel     error
}

func (e *Error) Error() string {
	if e.sentinel == ErrUnavailable {
		return "inventory client: " + e.Method + " " + e.Path + ": " + ErrUnavailable.Error() + ": " + e.Problem.Error()
	}
	if e.Problem.Detail != "" {
		return e.Problem.Detail
	}
	return e.sentinel.Error()
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.sentinel }

// problemError maps an error answer. The inventory's business problems
// become their sentinels; other 4xx problems, validation first, are
// returned as the *httpx.Problem itself, as the local module returns them;
// 5xx answers match ErrUnavailable.
func problemError(method, path string, resp *http.Response) error {
	p := readProblem(resp)
	if resp.StatusCode >= 500 {
		return &Error{Method: method, Path: APIPrefix + path, Problem: p, sentinel: ErrUnavailable}
	}
	if s, ok := sentinels[slugOf(p.Type)]; ok {
		return &Error{Method: method, Path: APIPrefix + path, Problem: p, sentinel: s}
	}
	return p
}

// readProblem decodes a problem document, or makes one from the status when
// the body is not one (a plain-text 502 from something in between).
func readProblem(resp *http.Response) *httpx.Problem {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == httpx.ContentTypeProblem || mt == "application/json" {
		var p httpx.Problem
		if err := json.NewDecoder(resp.Body).Decode(&p); err == nil && p.Status != 0 {
			if p.Type == "" {
				p.Type = "about:blank"
			}
			return &p
		}
	}
	p := httpx.NewProblem(resp.StatusCode, "", "", "the inventory service answered without a problem document")
	p.RequestID = resp.Header.Get(httpx.HeaderRequestID)
	return p
}

// slugOf returns the kind of problem a type URI names: the fragment of the
// problem type base, or "" for another URI.
func slugOf(typ string) string {
	slug, ok := strings.CutPrefix(typ, httpx.ProblemTypeBase)
	if !ok {
		return ""
	}
	return slug
}

// Services lists the registered services, as the proxy's admin client
// (proxy/adminclient.Client.Services) does.
type Services func(ctx context.Context) ([]api.Service, error)

// Discover returns a Config.Resolve that spreads calls round robin over the
// live instances of service in the proxy's service registry, where the
// extracted service registers itself. It reads the registry at most once
// per refresh (default 5 s), and keeps using the last list it read while
// the registry cannot be read.
func Discover(list Services, service string, refresh time.Duration) func(ctx context.Context) (string, error) {
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	var (
		mu      sync.Mutex
		urls    []string
		readAt  time.Time
		next    atomic.Uint64
		lastErr error
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		if time.Since(readAt) >= refresh {
			readAt = time.Now()
			fresh, err := instances(ctx, list, service)
			if err == nil {
				urls, lastErr = fresh, nil
			} else {
				lastErr = err
			}
		}
		cur, err := urls, lastErr
		mu.Unlock()
		if len(cur) == 0 {
			if err != nil {
				return "", fmt.Errorf("discover %s: %w", service, err)
			}
			return "", fmt.Errorf("discover %s: no instance is registered", service)
		}
		return cur[int(next.Add(1)-1)%len(cur)], nil
	}
}

func instances(ctx context.Context, list Services, service string) ([]string, error) {
	// The registry is read under a lock that other calls wait on.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	all, err := list(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []string
	for _, s := range all {
		if s.Name != service {
			continue
		}
		for _, in := range s.Instances {
			if in.ExpiresAt.IsZero() || in.ExpiresAt.After(now) {
				out = append(out, in.URL)
			}
		}
	}
	return out, nil
}
