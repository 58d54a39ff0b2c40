// Package adminclient is a Go client of the proxy's admin API. The CLI's
// "strangler routes" commands use it, and an extracted service uses
// Keepalive to register itself with a TTL heartbeat.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Client talks to one proxy's admin API.
type Client struct {
	base  *url.URL
	token string
	actor string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithActor names who makes changes, for the audit log (the CLI sends
// $USER@host).
func WithActor(a string) Option { return func(c *Client) { c.actor = a } }

// WithHTTPClient replaces the HTTP client (default: 10 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client of the admin API at baseURL ("http://127.0.0.1:8081"
// or "127.0.0.1:8081") with the bearer token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := httpx.BaseURL(baseURL, "admin address")
	if err != nil {
		return nil, err
	}
	c := &Client{base: u, token: token, hc: &http.Client{Timeout: 10 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is a failed call: the admin API's problem document, or a transport
// failure.
type Error struct {
	Status  int
	Problem *httpx.Problem
}

func (e *Error) Error() string {
	p := e.Problem
	if len(p.Errors) > 1 {
		var parts []string
		for _, fe := range p.Errors {
			parts = append(parts, fe.Field+": "+fe.Message)
		}
		return p.Title + ": " + strings.Join(parts, "; ")
	}
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// StatusOf returns the HTTP status of an admin API error, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, contentType string, hdr http.Header, out any) error {
	_, err := c.doHeader(ctx, method, path, query, body, contentType, hdr, out)
	return err
}

// doHeader is do that also returns the answer's header.
func (c *Client) doHeader(ctx context.Context, method, path string, query url.Values, body []byte, contentType string, hdr http.Header, out any) (http.Header, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if c.actor != "" {
		req.Header.Set(api.HeaderActor, c.actor)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.base.Host, err)
	}
	if resp.StatusCode >= 400 {
		return nil, &Error{Status: resp.StatusCode, Problem: httpx.ReadProblem(resp.StatusCode, b)}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.Header, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("admin API at %s: unexpected answer: %w", c.base.Host, err)
	}
	return resp.Header, nil
}

// Table returns the route table that serves.
func (c *Client) Table(ctx context.Context) (*api.Table, error) {
	var t api.Table
	return &t, c.do(ctx, http.MethodGet, "/v1/table", nil, nil, "", nil, &t)
}

// ReplaceTable replaces the whole table. ifVersion, when not zero, makes
// the change fail with 412 if the table changed since that version.
func (c *Client) ReplaceTable(ctx context.Context, doc *routes.Doc, ifVersion int64) (*api.Table, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return c.replace(ctx, b, "application/json", ifVersion)
}

// ReplaceTableYAML replaces the whole table with a YAML document.
func (c *Client) ReplaceTableYAML(ctx context.Context, yaml []byte, ifVersion int64) (*api.Table, error) {
	return c.replace(ctx, yaml, "application/yaml", ifVersion)
}

func (c *Client) replace(ctx context.Context, body []byte, ct string, ifVersion int64) (*api.Table, error) {
	var t api.Table
	return &t, c.do(ctx, http.MethodPut, "/v1/table", nil, body, ct, ifMatch(ifVersion), &t)
}

// Modules lists every module's state.
func (c *Client) Modules(ctx context.Context) ([]api.Module, error) {
	var out []api.Module
	return out, c.do(ctx, http.MethodGet, "/v1/modules", nil, nil, "", nil, &out)
}

// Module returns one module's state: mode, weight, routes, shadow
// comparison counts and the table version.
func (c *Client) Module(ctx context.Context, name string) (*api.Module, error) {
	var m api.Module
	return &m, c.do(ctx, http.MethodGet, "/v1/modules/"+url.PathEscape(name), nil, nil, "", nil, &m)
}

// ops are the module operations' paths by the mode they set.
var ops = map[routes.Mode]string{routes.ModeShadow: "shadow", routes.ModeCanary: "canary", routes.ModeExtracted: "flip", routes.ModeLegacy: "rollback"}

// SetMode sets a module's mode (and the canary weight). ifVersion, when
// not zero, makes the change fail with 412 if the table changed since that
// version (the module's Version).
func (c *Client) SetMode(ctx context.Context, module string, mode routes.Mode, weight int, ifVersion int64) (*api.Module, error) {
	op, ok := ops[mode]
	if !ok {
		return nil, fmt.Errorf("mode %q: want legacy, shadow, canary or extracted", mode)
	}
	var q url.Values
	if mode == routes.ModeCanary {
		q = url.Values{"weight": {strconv.Itoa(weight)}}
	}
	var m api.Module
	return &m, c.do(ctx, http.MethodPost, "/v1/modules/"+url.PathEscape(module)+"/"+op, q, nil, "", ifMatch(ifVersion), &m)
}

// ifMatch is the If-Match header of a change made against ifVersion, or
// none when ifVersion is 0.
func ifMatch(ifVersion int64) http.Header {
	h := http.Header{}
	if ifVersion > 0 {
		h.Set("If-Match", strconv.Quote(strconv.FormatInt(ifVersion, 10)))
	}
	return h
}

// Shadow serves the module from legacy and shadows it to the candidate.
func (c *Client) Shadow(ctx context.Context, module string) (*api.Module, error) {
	return c.SetMode(ctx, module, routes.ModeShadow, 0, 0)
}

// Canary sends weight percent of the module's users to the candidate.
func (c *Client) Canary(ctx context.Context, module string, weight int) (*api.Module, error) {
	return c.SetMode(ctx, module, routes.ModeCanary, weight, 0)
}

// Flip sends the whole module to the candidate, with legacy as fallback.
func (c *Client) Flip(ctx context.Context, module string) (*api.Module, error) {
	return c.SetMode(ctx, module, routes.ModeExtracted, 0, 0)
}

// Rollback sends the whole module back to legacy.
func (c *Client) Rollback(ctx context.Context, module string) (*api.Module, error) {
	return c.SetMode(ctx, module, routes.ModeLegacy, 0, 0)
}

// Diffs returns the module's shadow comparisons.
func (c *Client) Diffs(ctx context.Context, module string) (*api.Diffs, error) {
	var d api.Diffs
	return &d, c.do(ctx, http.MethodGet, "/v1/modules/"+url.PathEscape(module)+"/diffs", nil, nil, "", nil, &d)
}

// Audit returns the latest changes, newest first, for one module or, with
// module "", all of them: the first page of AuditPage.
func (c *Client) Audit(ctx context.Context, module string, limit int) ([]api.AuditEntry, error) {
	out, _, err := c.AuditPage(ctx, module, limit, "")
	return out, err
}

// AuditPage returns a page of changes, newest first, that come before the
// cursor (from the end with ""), and the cursor of the next page ("" when
// there is none). A page may hold fewer than limit entries when a module
// filter skips many: follow the cursor until it is "".
func (c *Client) AuditPage(ctx context.Context, module string, limit int, cursor string) ([]api.AuditEntry, string, error) {
	q := url.Values{}
	if module != "" {
		q.Set("module", module)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("before", cursor)
	}
	var out []api.AuditEntry
	h, err := c.doHeader(ctx, http.MethodGet, "/v1/audit", q, nil, "", nil, &out)
	if err != nil {
		return nil, "", err
	}
	return out, nextCursor(h.Get("Link")), nil
}

// nextCursor is the before parameter of a Link header's rel="next" target.
func nextCursor(link string) string {
	target, params, ok := strings.Cut(link, ";")
	if !ok || !strings.Contains(params, `rel="next"`) {
		return ""
	}
	u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
	if err != nil {
		return ""
	}
	return u.Query().Get("before")
}

// Backends lists the backends with their breaker and instances.
func (c *Client) Backends(ctx context.Context) ([]api.Backend, error) {
	var out []api.Backend
	return out, c.do(ctx, http.MethodGet, "/v1/backends", nil, nil, "", nil, &out)
}

// Replicas lists the proxy replicas that share the control store, with
// the version each serves.
func (c *Client) Replicas(ctx context.Context) ([]api.Replica, error) {
	var out []api.Replica
	return out, c.do(ctx, http.MethodGet, "/v1/replicas", nil, nil, "", nil, &out)
}

// Services lists the registered service instances.
func (c *Client) Services(ctx context.Context) ([]api.Service, error) {
	var out []api.Service
	return out, c.do(ctx, http.MethodGet, "/v1/services", nil, nil, "", nil, &out)
}

// Register registers (or renews) an instance of service at instanceURL for
// ttl.
func (c *Client) Register(ctx context.Context, service, instanceURL string, ttl time.Duration) error {
	body, _ := json.Marshal(api.Register{URL: instanceURL, TTLSeconds: int(ttl.Round(time.Second) / time.Second)})
	return c.do(ctx, http.MethodPut, "/v1/services/"+url.PathEscape(service)+"/instances", nil, body, "application/json", nil, nil)
}

// Deregister removes an instance.
func (c *Client) Deregister(ctx context.Context, service, instanceURL string) error {
	return c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(service)+"/instances", url.Values{"url": {instanceURL}}, nil, "", nil, nil)
}

// Keepalive registers the instance and renews the registration every
// ttl/3 until ctx ends, then deregisters it. Failed heartbeats (the proxy
// restarting, say) are reported to onError, if not nil, and retried at the
// next beat; Keepalive returns only when ctx ends.
func (c *Client) Keepalive(ctx context.Context, service, instanceURL string, ttl time.Duration, onError func(error)) error {
	if ttl < 3*time.Second {
		return fmt.Errorf("keepalive: ttl %s is too short; use 3s or more", ttl)
	}
	beat := func() {
		cctx, cancel := context.WithTimeout(ctx, ttl/3)
		defer cancel()
		if err := c.Register(cctx, service, instanceURL, ttl); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
	}
	beat()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := c.Deregister(dctx, service, instanceURL); err != nil && StatusOf(err) != http.StatusNotFound && onError != nil {
				onError(err)
			}
			return nil
		case <-t.C:
			beat()
		}
	}
}
