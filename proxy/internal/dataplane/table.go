package dataplane

import (
	"reflect"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// runtimeTable is a compiled table bound to live backends and metrics. It
// is immutable once published: a change builds a new one and swaps the
// pointer, and requests in flight finish on the one they loaded.
type runtimeTable struct {
	version int64
	// t is the compiled table; nil before a replica of a shared store
	// has read one, when every request gets 503 no-table.
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
	fallbacks  [fbCount]lazyCounter
	// refused count the fallbacks the module's policy did not allow.
	refused [fbCount]lazyCounter
	// keys name the route's series: by route and module (fallbacks,
	// shadow), and by legacy and candidate backend (requests).
	key, keyLegacy, keyCandidate *seriesKey
	salt                         uint64
	shadow                       *shadowRoute
	fbTotal                      *atomic.Int64
	sticky                       stickySources
	// usage is the route's traffic inventory, kept across tables.
	usage *routeUsage
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
func (p *Plane) buildTable(t *routes.Table, version int64, live map[string]*backend) (*runtimeTable, []*backend) {
	rt := &runtimeTable{version: version, t: t, backends: map[string]*backend{}}
	for name, spec := range t.Backends {
		if old, ok := live[name]; ok && reflect.DeepEqual(old.spec, spec) {
			rt.backends[name] = old
			continue
		}
		b := newBackend(spec, p.backendEnv())
		if spec.Service != "" {
			p.setServiceInstances(b)
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
	// The routes of a module share its sticky sources, and its JWT
	// secret is read once.
	sticky := map[string]stickySources{}
	for _, r := range t.Routes {
		ss, ok := sticky[r.Module]
		if !ok {
			ss = p.newStickySources(r.Module, r.Sticky)
			sticky[r.Module] = ss
		}
		x := &routeRT{Route: r, legacy: rt.backends[r.Legacy], salt: saltFor(r.Module), sticky: ss}
		x.key, x.keyLegacy = &seriesKey{route: r.ID, module: r.Module}, &seriesKey{route: r.ID, module: r.Module, backend: r.Legacy}
		x.mLegacy = p.m.forRoute(x.keyLegacy)
		if r.Candidate != "" {
			x.candidate = rt.backends[r.Candidate]
			x.keyCandidate = &seriesKey{route: r.ID, module: r.Module, backend: r.Candidate}
			x.mCandidate = p.m.forRoute(x.keyCandidate)
		}
		for i, reason := range fallbackReasons {
			x.fallbacks[i] = lazyCounter{lazy[prometheus.Counter]{vec: p.m.fallbacks, key: x.key, last: reason}}
			x.refused[i] = lazyCounter{lazy[prometheus.Counter]{vec: p.m.refused, key: x.key, last: reason}}
		}
		x.shadow = p.shadow.route(r)
		x.fbTotal = p.fallbackCounter(r.Module)
		x.usage = p.inv.route(r.Module, r.ID)
		rt.routes = append(rt.routes, x)
	}
	return rt, retired
}

// Publish binds a compiled table to backends and makes it serve: the
// control plane calls it with each new table. Requests in flight finish
// on the table they loaded.
func (p *Plane) Publish(t *routes.Table, version int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := map[string]*backend{}
	old := p.table.Load()
	if old != nil {
		live = old.backends
	}
	rt, retired := p.buildTable(t, version, live)
	p.table.Store(rt)
	for _, b := range retired {
		b.stop()
	}
	if old != nil {
		p.forget(old, rt)
	}
	p.syncServices()
	p.m.tableVersion.Set(float64(version))
	if t.CatchAll() {
		p.m.catchAll.Set(1)
	} else {
		p.m.catchAll.Set(0)
		p.log.Warn("route table has no catch-all route: "+control.WarnNoCatchAll, "version", version)
	}
}

// forget drops what the routes, modules and backends of old that t no
// longer has left behind: their metric series, the shadow results of their
// routes and their modules' fallback totals. Without it every table ever
// published stays in /metrics and the heap.
func (p *Plane) forget(old, t *runtimeTable) {
	type routeKey struct{ route, module, backend string }
	live := map[routeKey]bool{}
	for _, r := range t.routes {
		live[routeKey{r.ID, r.Module, ""}] = true
		live[routeKey{r.ID, r.Module, r.Legacy}] = true
		if r.Candidate != "" {
			live[routeKey{r.ID, r.Module, r.Candidate}] = true
		}
	}
	var dead []*seriesKey
	for _, r := range old.routes {
		for _, k := range []*seriesKey{r.keyLegacy, r.keyCandidate} {
			if k != nil && !live[routeKey{k.route, k.module, k.backend}] {
				p.m.forgetRoute(k)
			}
		}
		if !live[routeKey{r.ID, r.Module, ""}] {
			dead = append(dead, r.key)
			p.shadow.forget(r.ID, r.Module)
		}
	}
	if len(dead) > 0 {
		p.m.forgetRoutes(dead)
	}
	for name := range old.backends {
		if _, ok := t.backends[name]; !ok {
			p.m.forgetBackend(name)
		}
	}
	modules := map[string]bool{}
	for _, m := range t.t.Modules {
		modules[m.Name] = true
	}
	p.fbTotals.Range(func(k, _ any) bool {
		if !modules[k.(string)] {
			p.fbTotals.Delete(k)
		}
		return true
	})
}

// forget drops the shadow results, and their metric series, of a route
// that left the table. A route whose id now belongs to another module has
// new results, which stay.
func (s *shadower) forget(id, module string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sr, ok := s.routes[id]; ok && sr.module == module {
		delete(s.routes, id)
		sr.unregister(s.p.m)
	}
}

// ServicesChanged points the backends of a service at its instances: the
// service registry calls it when they change.
func (p *Plane) ServicesChanged(service string) {
	t := p.table.Load()
	if t == nil {
		return
	}
	for _, b := range t.backends {
		if b.spec.Service == service {
			p.setServiceInstances(b)
		}
	}
}

// syncServices refreshes every service backend, after a table swap.
func (p *Plane) syncServices() {
	t := p.table.Load()
	for _, b := range t.backends {
		if b.spec.Service != "" {
			p.setServiceInstances(b)
		}
	}
}

// setServiceInstances points b at its service's live instances. If the
// registry cannot be read, b keeps the instances it has.
func (p *Plane) setServiceInstances(b *backend) {
	if p.services == nil {
		b.setInstances(nil)
		return
	}
	urls, err := p.services.URLs(b.spec.Service)
	if err != nil {
		p.log.Warn("service registry not read; the backend keeps its instances", "backend", b.name, "error", err)
		return
	}
	b.setInstances(urls)
}
