package proxy

import (
	"runtime"
	"strings"

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
func (p *Proxy) ShadowGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "dataplane.(*shadower)") {
			n++
		}
	}
	return n
}
