package proxy

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// adminBodyLimit caps admin request bodies; a route table is the largest.
const adminBodyLimit = routes.MaxDocSize

// newAdmin builds the admin API: /v1 behind the bearer token, and /healthz,
// /readyz and /metrics open, like the other components' listeners.
func (p *Proxy) newAdmin() *echo.Echo {
	e := httpx.NewEcho(p.log.With("listener", "admin"), p.m.reg, adminBodyLimit)
	h := &httpx.Health{}
	h.SetReady(true)
	h.AddCheck("legacy_reachable", p.legacy.ready)
	h.Register(e)
	v1 := e.Group("/v1", httpx.BearerAuth("strangler-admin", func() string { return p.token }))
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
	v1.GET("/services", p.listServices)
	v1.PUT("/services/:service/instances", p.registerInstance)
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

func (p *Proxy) tableView() api.Table {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := api.Table{Version: p.ctl.version, Source: p.ctl.source, UpdatedAt: p.ctl.updatedAt, UpdatedBy: p.ctl.updatedBy, Table: p.ctl.effective}
	if t.Source == sourceFile {
		t.File = p.cfg.RoutesFile
	}
	return t
}

func (p *Proxy) getTable(c echo.Context) error {
	t := p.tableView()
	c.Response().Header().Set("ETag", strconv.Quote(strconv.FormatInt(t.Version, 10)))
	return c.JSON(http.StatusOK, t)
}

func (p *Proxy) putTable(c echo.Context) error {
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
		return tableProblem(err)
	}
	var ifVersion int64
	if im := c.Request().Header.Get("If-Match"); im != "" {
		v, err := strconv.ParseInt(strings.Trim(im, `"`), 10, 64)
		if err != nil || v <= 0 {
			return httpx.BadRequest("If-Match must be a table version, such as \"12\"")
		}
		ifVersion = v
	}
	if err := p.ReplaceTable(actor(c), doc, ifVersion); err != nil {
		return tableProblem(err)
	}
	return p.getTable(c)
}

// tableProblem maps a change's error to its problem.
func tableProblem(err error) error {
	var te *routes.Error
	var ce *changeError
	switch {
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
		return httpx.Invalid(httpx.FieldError{Field: ce.field, Message: ce.msg})
	case errors.Is(err, errModuleNotFound):
		return httpx.NotFound("no module of that name in the route table")
	case errors.Is(err, errFileManaged):
		return httpx.Conflict("file-managed", "Table managed by a file",
			"the route table comes from a routes file; edit the file, or use the module operations (shadow, canary, flip, rollback)")
	case errors.Is(err, errVersion):
		return httpx.NewProblem(http.StatusPreconditionFailed, "version-mismatch", "Version mismatch",
			"the table changed since you read it; read it again and retry")
	}
	if strings.Contains(err.Error(), "not valid") || strings.Contains(err.Error(), "route table") {
		return httpx.BadRequest("%s", err.Error())
	}
	return err
}

func (p *Proxy) listModules(c echo.Context) error {
	t := p.table.Load()
	out := make([]api.Module, 0, len(t.t.Modules))
	for _, m := range t.t.Modules {
		out = append(out, p.moduleStatus(t, m))
	}
	return c.JSON(http.StatusOK, out)
}

func (p *Proxy) getModule(c echo.Context) error {
	t := p.table.Load()
	for _, m := range t.t.Modules {
		if m.Name == c.Param("module") {
			return c.JSON(http.StatusOK, p.moduleStatus(t, m))
		}
	}
	return httpx.NotFound("no module %q in the route table", c.Param("module"))
}

func (p *Proxy) moduleStatus(t *runtimeTable, m *routes.ModuleInfo) api.Module {
	out := api.Module{Name: m.Name, Mode: m.Mode, Weight: m.Weight, Legacy: m.Legacy, Candidate: m.Candidate, Version: t.version, Routes: []api.Route{}}
	for _, r := range m.Routes {
		match := r.Pattern.Raw
		if r.Pattern.Prefix {
			match = "prefix " + match
		}
		if len(r.Methods) > 0 {
			match = strings.Join(r.Methods, ",") + " " + match
		}
		if r.Host != "" {
			match += " host " + r.Host
		}
		if n := len(r.Headers) + len(r.Query) + len(r.Cookies); n > 0 {
			match += " +" + strconv.Itoa(n) + " conditions"
		}
		out.Routes = append(out.Routes, api.Route{ID: r.ID, Match: match, Mode: r.Mode, Weight: r.Weight})
		rt := t.routes[r.Index]
		s := rt.shadow.stats()
		out.Shadow.Compared += s.Compared
		out.Shadow.Matches += s.Matches
		out.Shadow.Mismatches += s.Mismatches
		out.Shadow.Noise += s.Noise
		out.Shadow.Errors += s.Errors
		out.Shadow.Dropped += s.Dropped
	}
	if out.Shadow.Compared > 0 {
		out.Shadow.MismatchRate = float64(out.Shadow.Mismatches) / float64(out.Shadow.Compared)
	}
	out.Fallbacks = p.fallbackTotal(m.Name)
	p.mu.Lock()
	if o, ok := p.ctl.overrides[m.Name]; ok {
		out.Override = &api.ModeOverride{Mode: o.Mode, Weight: o.Weight}
	}
	p.mu.Unlock()
	return out
}

func (p *Proxy) moduleOp(mode routes.Mode) echo.HandlerFunc {
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
		if err := p.SetModule(actor(c), c.Param("module"), mode, weight); err != nil {
			if errors.Is(err, errModuleNotFound) {
				return httpx.NotFound("no module %q in the route table", c.Param("module"))
			}
			return tableProblem(err)
		}
		return p.getModule(c)
	}
}

func (p *Proxy) getDiffs(c echo.Context) error {
	t := p.table.Load()
	name := c.Param("module")
	for _, m := range t.t.Modules {
		if m.Name != name {
			continue
		}
		out := api.Diffs{Module: name, Routes: []api.RouteDiffs{}}
		for _, r := range m.Routes {
			out.Routes = append(out.Routes, t.routes[r.Index].shadow.report())
		}
		return c.JSON(http.StatusOK, out)
	}
	return httpx.NotFound("no module %q in the route table", name)
}

func (p *Proxy) getAudit(c echo.Context) error {
	limit := 50
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 10000 {
			return httpx.BadRequest("limit must be 1 to 10000, not %q", raw)
		}
		limit = n
	}
	entries, err := p.store.readAudit(c.QueryParam("module"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, entries)
}

func (p *Proxy) listBackends(c echo.Context) error {
	t := p.table.Load()
	out := []api.Backend{}
	for name, b := range t.backends {
		out = append(out, api.Backend{Name: name, Service: b.spec.Service, Breaker: b.breakerState(), Instances: b.describeInstances()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		if out[i].Instances == nil {
			out[i].Instances = []api.InstanceStatus{}
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (p *Proxy) listServices(c echo.Context) error {
	return c.JSON(http.StatusOK, p.registry.list())
}

func (p *Proxy) registerInstance(c echo.Context) error {
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
	ttl := DefaultTTL
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	created := p.registry.register(service, u.String(), ttl)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		p.log.Info("service instance registered", "service", service, "url", u.String(), "ttl", ttl.String())
	}
	return c.JSON(status, api.RegisteredInstance{URL: u.String(), ExpiresAt: time.Now().Add(ttl).UTC()})
}

func (p *Proxy) deregisterInstance(c echo.Context) error {
	raw := c.QueryParam("url")
	u, err := routes.ParseBackendURL(raw)
	if err != nil {
		return httpx.BadRequest("url: %v", err)
	}
	if !p.registry.deregister(c.Param("service"), u.String()) {
		return httpx.NotFound("no instance %s registered for service %q", u, c.Param("service"))
	}
	p.log.Info("service instance deregistered", "service", c.Param("service"), "url", u.String())
	return c.NoContent(http.StatusNoContent)
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
