package dataplane

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/stranglerkit/strangler/proxy/admin"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// views are the data plane's read-only views for the admin API.
type views struct{ p *Plane }

var _ admin.DataPlane = views{}

// Modules implements admin.DataPlane.
func (v views) Modules() []api.Module {
	t := v.p.table.Load()
	out := []api.Module{}
	if t.t == nil {
		return out
	}
	for _, m := range t.t.Modules {
		out = append(out, v.moduleStatus(t, m))
	}
	return out
}

func (v views) moduleStatus(t *runtimeTable, m *routes.ModuleInfo) api.Module {
	out := api.Module{Name: m.Name, Mode: m.Mode, Weight: m.Weight, Legacy: m.Legacy, Candidate: m.Candidate, Fallback: m.Fallback, Version: t.version, Routes: []api.Route{}}
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
		out.Shadow.Add(t.routes[r.Index].shadow.stats())
	}
	out.Fallbacks = v.p.fallbackTotal(m.Name)
	return out
}

// Diffs implements admin.DataPlane.
func (v views) Diffs(module string) (api.Diffs, bool) {
	t := v.p.table.Load()
	if t.t == nil {
		return api.Diffs{}, false
	}
	for _, m := range t.t.Modules {
		if m.Name != module {
			continue
		}
		out := api.Diffs{Module: module, Routes: []api.RouteDiffs{}}
		for _, r := range m.Routes {
			out.Routes = append(out.Routes, t.routes[r.Index].shadow.report())
		}
		return out, true
	}
	return api.Diffs{}, false
}

// Backends implements admin.DataPlane.
func (v views) Backends() []api.Backend {
	t := v.p.table.Load()
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
	return out
}

// BackendHealth counts the instances of the serving table's backends, by
// name, for the replica's report.
func (p *Plane) BackendHealth() []api.BackendHealth {
	t := p.table.Load()
	if t == nil {
		return []api.BackendHealth{}
	}
	out := make([]api.BackendHealth, 0, len(t.backends))
	for _, b := range t.backends {
		out = append(out, b.health())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LegacyReachable implements admin.DataPlane.
func (v views) LegacyReachable(ctx context.Context) error { return v.p.legacy.ready(ctx) }
