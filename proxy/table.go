package proxy

import (
	"reflect"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// runtimeTable is a compiled table bound to live backends and metrics. It
// is immutable once published: a change builds a new one and swaps the
// pointer, and requests in flight finish on the one they loaded.
type runtimeTable struct {
	version  int64
	t        *routes.Table
	routes   []*routeRT
	backends map[string]*backend
}

// routeRT is a route with everything the data plane needs resolved.
type routeRT struct {
	*routes.Route
	legacy     *backend
	candidate  *backend
	mLegacy    *routeMetrics
	mCandidate *routeMetrics
	fallbacks  [fbCount]prometheus.Counter
	salt       uint64
	shadow     *shadowRoute
	fbTotal    *atomic.Int64
}

func (t *runtimeTable) match(st *reqState) *routeRT {
	r := t.t.Match(st)
	if r == nil {
		return nil
	}
	return t.routes[r.Index]
}

// buildTable binds a compiled table to backends, reusing the live ones
// whose spec did not change. It returns the backends that the new table no
// longer uses, to stop once it is published.
func (p *Proxy) buildTable(t *routes.Table, version int64, live map[string]*backend) (*runtimeTable, []*backend) {
	rt := &runtimeTable{version: version, t: t, backends: map[string]*backend{}}
	for name, spec := range t.Backends {
		if old, ok := live[name]; ok && reflect.DeepEqual(old.spec, spec) {
			rt.backends[name] = old
			continue
		}
		b := newBackend(spec, p.cfg.RetryBudgetRatio, p.log, p.m, p.dog)
		if spec.Service != "" {
			b.setInstances(p.registry.urls(spec.Service))
		}
		if p.health != nil {
			b.startHealth(p.health, &p.healthWG)
		}
		rt.backends[name] = b
	}
	var retired []*backend
	for name, b := range live {
		if rt.backends[name] != b {
			retired = append(retired, b)
		}
	}
	for _, r := range t.Routes {
		x := &routeRT{Route: r, legacy: rt.backends[r.Legacy], salt: saltFor(r.Module)}
		x.mLegacy = p.m.forRoute(r.ID, r.Module, r.Legacy)
		if r.Candidate != "" {
			x.candidate = rt.backends[r.Candidate]
			x.mCandidate = p.m.forRoute(r.ID, r.Module, r.Candidate)
		}
		for i, reason := range fallbackReasons {
			x.fallbacks[i] = p.m.fallbacks.WithLabelValues(r.ID, r.Module, reason)
		}
		x.shadow = p.shadow.route(r)
		x.fbTotal = p.fallbackCounter(r.Module)
		rt.routes = append(rt.routes, x)
	}
	return rt, retired
}
