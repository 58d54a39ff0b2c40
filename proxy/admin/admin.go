// Package admin is the proxy's admin API, on its own listener: the route
// table and module operations, phases, the audit log and the service
// registry over the control plane, and the data plane's read-only views
// (modules with their shadow results, diffs, backends), behind a bearer
// token; /healthz, /readyz and /metrics open.
package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// bodyLimit caps admin request bodies; a route table is the largest.
const bodyLimit = routes.MaxDocSize

// DataPlane is what the admin API reads of the data plane. Each view is
// of one table, the one that serves when it is called.
type DataPlane interface {
	// Modules are the serving table's modules with their routes, shadow
	// results and fallbacks, in table order; Override is left to the
	// control plane.
	Modules() []api.Module
	// Diffs are a module's shadow diffs, and false when the serving table
	// has no such module.
	Diffs(module string) (api.Diffs, bool)
	// Backends are the serving table's backends with their instances,
	// by name.
	Backends() []api.Backend
	// LegacyReachable is the readiness check: nil once legacy answered.
	LegacyReachable(ctx context.Context) error
}

// Config is what the admin API needs besides the planes.
type Config struct {
	// Token is the bearer token of /v1; it must be set.
	Token string
	// Log gets the API's request log and what it reports.
	Log *slog.Logger
	// Metrics is served on /metrics, with the API's own metrics.
	Metrics *prometheus.Registry
	// Replicas lists the proxy replicas that share the control store and
	// what each serves, for GET /v1/replicas. If nil, that answers an
	// empty list.
	Replicas func(ctx context.Context) ([]api.Replica, error)
	// Usage reads the traffic inventory of every replica, for GET
	// /v1/inventory and /v1/discover; its errors are *control.StoreError.
	// If nil, the inventory is empty.
	Usage func(ctx context.Context) ([]control.Usage, error)
}

// server is the admin API's handlers.
type server struct {
	log      *slog.Logger
	ctl      *control.Plane
	registry *control.Registry
	data     DataPlane
	replicas func(ctx context.Context) ([]api.Replica, error)
	usage    func(ctx context.Context) ([]control.Usage, error)
}

// New builds the admin API: /v1 behind the bearer token, and /healthz,
// /readyz and /metrics open, like the other components' listeners.
func New(cfg Config, ctl *control.Plane, registry *control.Registry, data DataPlane) *echo.Echo {
	p := &server{log: cfg.Log, ctl: ctl, registry: registry, data: data, replicas: cfg.Replicas, usage: cfg.Usage}
	e := httpx.NewEcho(cfg.Log.With("listener", "admin"), cfg.Metrics, bodyLimit)
	h := &httpx.Health{}
	h.SetReady(true)
	h.AddCheck("legacy_reachable", data.LegacyReachable)
	h.AddCheck("control_table", ctl.Ready)
	h.AddInfo("control", func() any { return ctl.Status() })
	h.Register(e)
	token := cfg.Token
	v1 := e.Group("/v1", httpx.BearerAuth("strangler-admin", func() string { return token }))
	v1.GET("/table", p.getTable)
	v1.PUT("/table", p.putTable)
	v1.GET("/modules", p.listModules)
	v1.GET("/modules/:module", p.getModule)
	v1.POST("/modules/:module/shadow", p.moduleOp(routes.ModeShadow))
	v1.POST("/modules/:module/canary", p.moduleOp(routes.ModeCanary))
	v1.POST("/modules/:module/flip", p.moduleOp(routes.ModeExtracted))
	v1.POST("/modules/:module/rollback", p.moduleOp(routes.ModeLegacy))
	v1.GET("/modules/:module/diffs", p.getDiffs)
	v1.GET("/audit", p.getAudit)
	p.registerPhases(v1)
	v1.GET("/backends", p.listBackends)
	v1.GET("/replicas", p.listReplicas)
	v1.GET("/inventory", p.getInventory)
	v1.GET("/discover", p.getDiscover)
	v1.GET("/services", p.listServices)
	// Instances renew their registration every few seconds; a new one is
	// logged by registerInstance.
	v1.PUT("/services/:service/instances", p.registerInstance, httpx.Quiet())
	v1.DELETE("/services/:service/instances", p.deregisterInstance)
	return e
}

// actor names who makes a change: the X-Strangler-Actor header the CLI
// sends ($USER@host), else the token.
func actor(c echo.Context) string {
	a := c.Request().Header.Get(api.HeaderActor)
	if a == "" || len(a) > 128 {
		return "admin-token"
	}
	for i := 0; i < len(a); i++ {
		if a[i] < 0x21 || a[i] > 0x7e {
			return "admin-token"
		}
	}
	return a + " (admin-token)"
}

func (p *server) getTable(c echo.Context) error {
	t := p.ctl.Table()
	c.Response().Header().Set("ETag", strconv.Quote(strconv.FormatInt(t.Version, 10)))
	return c.JSON(http.StatusOK, t)
}

func (p *server) putTable(c echo.Context) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return httpx.BadRequest("the body must be a route table in JSON or YAML")
	}
	var doc *routes.Doc
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	switch mt {
	case "application/json", "":
		doc, err = routes.ParseJSON(body)
	case "application/yaml", "application/x-yaml", "text/yaml":
		doc, err = routes.Parse(body)
	default:
		return httpx.NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"send the table as application/json or application/yaml")
	}
	if err != nil {
		return p.changeProblem(err)
	}
	ifVersion, err := ifMatch(c)
	if err != nil {
		return err
	}
	if err := p.ctl.ReplaceTable(actor(c), doc, ifVersion); err != nil {
		return p.changeProblem(err)
	}
	return p.getTable(c)
}

// ifMatch reads the If-Match header of a change: the table version it
// was made against (the ETag of GET /v1/table and /v1/modules/{m}), or 0
// when the change is unconditional.
func ifMatch(c echo.Context) (int64, error) {
	im := c.Request().Header.Get("If-Match")
	if im == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(im, `"`), 10, 64)
	if err != nil || v <= 0 {
		return 0, httpx.BadRequest("If-Match must be a table version, such as \"12\"")
	}
	return v, nil
}

// changeProblem maps a change's error to its problem and logs the cause
// of a change that could not be saved, which the problem leaves out.
func (p *server) changeProblem(err error) error {
	var pe *control.PersistError
	if errors.As(err, &pe) {
		p.log.Error("change not saved; the table that serves is unchanged", "error", err)
	}
	return changeProblem(err)
}

// changeProblem maps a change's error to its problem by the error's type.
// Errors of no known type are returned as they are: a 500.
func changeProblem(err error) error {
	var te *routes.Error
	var ce *control.ChangeError
	var pe *routes.ParseError
	var se *control.PersistError
	switch {
	case errors.Is(err, control.ErrNoTable):
		return httpx.NewProblem(http.StatusServiceUnavailable, "no-table", "No route table",
			"this proxy has not read a route table from its control store yet; retry, or send the change to another replica")
	case errors.As(err, &se):
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return httpx.NewProblem(http.StatusInsufficientStorage, "insufficient-storage", "Insufficient storage",
				"the proxy's state disk is full, so the change was not saved; the table that serves is unchanged")
		}
		return httpx.NewProblem(http.StatusServiceUnavailable, "state-not-saved", "State not saved",
			"the proxy could not save to its control store (its state dir, or the shared store), so the change was not saved; the table that serves is unchanged")
	case errors.As(err, &pe):
		return httpx.BadRequest("%s", pe.Error())
	case errors.As(err, &te):
		var fe []httpx.FieldError
		for _, prob := range te.Problems {
			field, msg, ok := strings.Cut(prob, ": ")
			if !ok {
				field, msg = "table", prob
			}
			fe = append(fe, httpx.FieldError{Field: field, Message: msg})
		}
		return httpx.Invalid(fe...)
	case errors.As(err, &ce):
		return httpx.Invalid(httpx.FieldError{Field: ce.Field, Message: ce.Msg})
	case errors.Is(err, control.ErrModuleNotFound):
		return httpx.NotFound("no module of that name in the route table")
	case errors.Is(err, control.ErrFileManaged):
		return httpx.Conflict("file-managed", "Table managed by a file",
			"the route table comes from a routes file; edit the file, or use the module operations (shadow, canary, flip, rollback)")
	case errors.Is(err, control.ErrVersion):
		return httpx.NewProblem(http.StatusPreconditionFailed, "version-mismatch", "Version mismatch",
			"the table changed since you read it; read it again and retry")
	}
	return err
}

func (p *server) listModules(c echo.Context) error {
	out := p.data.Modules()
	for i := range out {
		out[i].Override = p.ctl.Override(out[i].Name)
	}
	return c.JSON(http.StatusOK, out)
}

func (p *server) getModule(c echo.Context) error {
	for _, m := range p.data.Modules() {
		if m.Name == c.Param("module") {
			m.Override = p.ctl.Override(m.Name)
			c.Response().Header().Set("ETag", strconv.Quote(strconv.FormatInt(m.Version, 10)))
			return c.JSON(http.StatusOK, m)
		}
	}
	return httpx.NotFound("no module %q in the route table", c.Param("module"))
}

func (p *server) getDiffs(c echo.Context) error {
	name := c.Param("module")
	out, ok := p.data.Diffs(name)
	if !ok {
		return httpx.NotFound("no module %q in the route table", name)
	}
	return c.JSON(http.StatusOK, out)
}

func (p *server) listBackends(c echo.Context) error {
	return c.JSON(http.StatusOK, p.data.Backends())
}

func (p *server) moduleOp(mode routes.Mode) echo.HandlerFunc {
	return func(c echo.Context) error {
		weight := 0
		if mode == routes.ModeCanary {
			raw := c.QueryParam("weight")
			if raw == "" {
				return httpx.BadRequest("canary needs ?weight=N, the percentage of users (0 to 100) sent to the candidate")
			}
			w, err := strconv.Atoi(raw)
			if err != nil {
				return httpx.BadRequest("weight must be a whole number from 0 to 100, not %q", raw)
			}
			weight = w
		}
		ifVersion, err := ifMatch(c)
		if err != nil {
			return err
		}
		if err := p.ctl.SetModule(actor(c), c.Param("module"), mode, weight, ifVersion); err != nil {
			if errors.Is(err, control.ErrModuleNotFound) {
				return httpx.NotFound("no module %q in the route table", c.Param("module"))
			}
			return p.changeProblem(err)
		}
		return p.getModule(c)
	}
}

// getAudit answers a page of the audit log, newest first. The Link header
// (rel="next") names the next page while there is one; a page may hold
// fewer entries than its limit when a module filter skips many.
func (p *server) getAudit(c echo.Context) error {
	q := httpx.NewQuery(c, "module", "limit", "before")
	module, limit, before := q.String("module"), q.Limit(10000), q.Int64("before")
	if err := q.Err(); err != nil {
		return err
	}
	if limit == 0 {
		limit = 50
	}
	if q.String("before") != "" && before < 1 {
		return httpx.BadRequest("before must be a cursor from the Link header of a previous page, not %q", q.String("before"))
	}
	page, err := p.ctl.Audit(c.Request().Context(), control.AuditQuery{Module: module, Limit: limit, Before: before})
	if err != nil {
		return p.storeProblem(err, "the audit log could not be read from the control store")
	}
	entries, next := page.Entries, page.Next
	if next > 0 {
		v := url.Values{"limit": {strconv.Itoa(limit)}, "before": {strconv.FormatInt(next, 10)}}
		if module != "" {
			v.Set("module", module)
		}
		c.Response().Header().Set("Link", "</v1/audit?"+v.Encode()+`>; rel="next"`)
	}
	return c.JSON(http.StatusOK, entries)
}

func (p *server) listReplicas(c echo.Context) error {
	if p.replicas == nil {
		return c.JSON(http.StatusOK, []api.Replica{})
	}
	list, err := p.replicas(c.Request().Context())
	if err != nil {
		p.log.Error("replicas not read from the control store", "error", err)
		return storeUnavailable("the replicas' reports could not be read from the control store")
	}
	return c.JSON(http.StatusOK, list)
}

func (p *server) listServices(c echo.Context) error {
	list, err := p.registry.List(c.Request().Context())
	if err != nil {
		return p.storeProblem(err, "the service registry could not be read from the control store")
	}
	return c.JSON(http.StatusOK, list)
}

func (p *server) registerInstance(c echo.Context) error {
	service := c.Param("service")
	var v httpx.Validator
	v.Check(validServiceName(service), "service", "must be lower-case letters, digits, '.', '_' and '-'")
	var req api.Register
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	u, err := routes.ParseBackendURL(req.URL)
	if err != nil {
		v.Add("url", err.Error())
	}
	v.Check(req.TTLSeconds >= 0 && req.TTLSeconds <= 3600, "ttl_seconds", "must be 0 to 3600")
	if err := v.Err(); err != nil {
		return err
	}
	ttl := control.DefaultTTL
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	created, err := p.registry.Register(c.Request().Context(), service, u.String(), ttl)
	if err != nil {
		return p.storeProblem(err, "the instance could not be registered in the control store")
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		p.log.Info("service instance registered", "service", service, "url", u.String(), "ttl", ttl.String())
	}
	return c.JSON(status, api.RegisteredInstance{URL: u.String(), ExpiresAt: time.Now().Add(ttl).UTC()})
}

func (p *server) deregisterInstance(c echo.Context) error {
	raw := c.QueryParam("url")
	u, err := routes.ParseBackendURL(raw)
	if err != nil {
		return httpx.BadRequest("url: %v", err)
	}
	ok, err := p.registry.Deregister(c.Request().Context(), c.Param("service"), u.String())
	if err != nil {
		return p.storeProblem(err, "the instance could not be deregistered in the control store")
	}
	if !ok {
		return httpx.NotFound("no instance %s registered for service %q", u, c.Param("service"))
	}
	p.log.Info("service instance deregistered", "service", c.Param("service"), "url", u.String())
	return c.NoContent(http.StatusNoContent)
}

// storeProblem maps a registry or audit error to its problem by type: a
// control.StoreError is the store's failure, logged in full and answered
// 503 store-unavailable with detail alone. Errors of no known type are
// returned as they are: a 500.
func (p *server) storeProblem(err error, detail string) error {
	var se *control.StoreError
	if !errors.As(err, &se) {
		return err
	}
	p.log.Error("control store failed", "op", se.Op, "error", se.Err)
	return storeUnavailable(detail)
}

// storeUnavailable is the 503 store-unavailable problem with detail.
func storeUnavailable(detail string) error {
	return httpx.NewProblem(http.StatusServiceUnavailable, "store-unavailable", "Control store unavailable", detail)
}

func validServiceName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
