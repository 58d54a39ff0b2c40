package proxy

import (
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/proxy/api"
)

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) { return p.dp.Inspect().PauseShadow() }

// RouteStateSizes is how many modules have a fallback total and how many
// routes have shadow results, for tests that check that removed ones go.
func (p *Proxy) RouteStateSizes() (fallbackModules, shadowRoutes int) {
	return p.dp.Inspect().RouteStateSizes()
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return p.dp.Inspect().ShadowQueueLen() }

// ShadowStats is a route's shadow results, readable after Run returns.
func (p *Proxy) ShadowStats(route string) api.ShadowStats { return p.dp.Inspect().ShadowStats(route) }

// ShadowRoutes lists the routes the shadower keeps results for, sorted.
func (p *Proxy) ShadowRoutes() []string { return p.dp.Inspect().ShadowRoutes() }

// ShadowGoroutines counts the goroutines running the shadower's code, of
// any proxy in the process.
func (p *Proxy) ShadowGoroutines() int { return lifecycletest.Count("dataplane.(*shadower)") }
