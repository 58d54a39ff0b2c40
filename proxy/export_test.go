package proxy

import (
	"runtime"
	"sort"
	"strings"

	"github.com/stranglerkit/strangler/proxy/api"
)

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) {
	p.shadow.pause.Lock()
	return p.shadow.pause.Unlock
}

// RouteStateSizes is how many modules have a fallback total and how many
// routes have shadow results, for tests that check that removed ones go.
func (p *Proxy) RouteStateSizes() (fallbackModules, shadowRoutes int) {
	p.fbTotals.Range(func(any, any) bool { fallbackModules++; return true })
	p.shadow.mu.Lock()
	defer p.shadow.mu.Unlock()
	return fallbackModules, len(p.shadow.routes)
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return int(p.shadow.queued.Load()) }

// ShadowStats is a route's shadow results, readable after Run returns.
func (p *Proxy) ShadowStats(route string) api.ShadowStats {
	p.shadow.mu.Lock()
	sr := p.shadow.routes[route]
	p.shadow.mu.Unlock()
	if sr == nil {
		return api.ShadowStats{}
	}
	return sr.stats()
}

// ShadowRoutes lists the routes the shadower keeps results for, sorted.
func (p *Proxy) ShadowRoutes() []string {
	p.shadow.mu.Lock()
	defer p.shadow.mu.Unlock()
	out := make([]string, 0, len(p.shadow.routes))
	for id := range p.shadow.routes {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ShadowGoroutines counts the goroutines running the shadower's code, of
// any proxy in the process.
func (p *Proxy) ShadowGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "proxy.(*shadower)") {
			n++
		}
	}
	return n
}
