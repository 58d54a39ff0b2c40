package dataplane

import (
	"sort"

	"github.com/stranglerkit/strangler/proxy/api"
)

// Inspector reads and holds the data plane's inner state for the proxy's
// black-box tests (proxy/export_test.go), which check what no API shows:
// that state of removed routes goes, that a full shadow queue drops.
// Nothing else uses it.
type Inspector struct{ p *Plane }

// Inspect is p's Inspector.
func (p *Plane) Inspect() Inspector { return Inspector{p} }

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (i Inspector) PauseShadow() (resume func()) {
	i.p.shadow.pause.Lock()
	return i.p.shadow.pause.Unlock
}

// RouteStateSizes is how many modules have a fallback total and how many
// routes have shadow results.
func (i Inspector) RouteStateSizes() (fallbackModules, shadowRoutes int) {
	i.p.fbTotals.Range(func(any, any) bool { fallbackModules++; return true })
	i.p.shadow.mu.Lock()
	defer i.p.shadow.mu.Unlock()
	return fallbackModules, len(i.p.shadow.routes)
}

// ShadowQueueLen is how many copies wait.
func (i Inspector) ShadowQueueLen() int { return int(i.p.shadow.queued.Load()) }

// ShadowStats is a route's shadow results, readable after Run returns.
func (i Inspector) ShadowStats(route string) api.ShadowStats {
	i.p.shadow.mu.Lock()
	sr := i.p.shadow.routes[route]
	i.p.shadow.mu.Unlock()
	if sr == nil {
		return api.ShadowStats{}
	}
	return sr.stats()
}

// ShadowRoutes lists the routes the shadower keeps results for, sorted.
func (i Inspector) ShadowRoutes() []string {
	i.p.shadow.mu.Lock()
	defer i.p.shadow.mu.Unlock()
	out := make([]string, 0, len(i.p.shadow.routes))
	for id := range i.p.shadow.routes {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
