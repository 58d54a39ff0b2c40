package dataplane

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/discover"
)

// The traffic inventory counts every request a route's backend answered
// by its path template (discover.AppendTemplate), the side that answered
// and the status class, for `strangler routes inventory` and discover. The
// counters are atomics the request path adds to without allocating or
// locking (a route's templates are a copy-on-write map); a template seen
// for the first time takes a lock, one string and a copy of the map. A route
// holds up to control.MaxUsageTemplates templates and the plane up to
// maxInventoryTemplates in all: the requests of further templates count in
// the route's control.OtherTemplate bucket, so that random paths cannot
// grow the heap. The proxy takes the deltas (UsageDeltas) every few
// seconds and adds them to the control store.

// maxInventoryTemplates caps the templates of every route together: with
// MaxRoutes routes of a thousand templates, the heap would otherwise hold
// ten million.
const maxInventoryTemplates = 100_000

// The sides of a request, as the inventory counts them.
const (
	sideLegacy = iota
	sideCandidate
)

// inventory is the plane's traffic inventory, by module and route id, kept
// across table versions until its counts are flushed.
type inventory struct {
	mu     sync.Mutex
	routes map[[2]string]*routeUsage
	// templates counts the templates of every route, for the plane-wide
	// cap.
	templates atomic.Int64
	// flushMu makes one UsageDeltas and its commit at a time.
	flushMu sync.Mutex
}

// routeUsage is one route's counts.
type routeUsage struct {
	module, route string
	inv           *inventory
	// templates is read without a lock; mu serializes its replacement by
	// a copy with one more template.
	templates atomic.Pointer[map[string]*templateUsage]
	mu        sync.Mutex
	other     *templateUsage
	// lastSeen is the last request by side, in Unix nanoseconds, for the
	// metrics.
	lastSeen [2]atomic.Int64
}

// templateUsage counts one template. The sent fields are what the last
// committed flush took; only the flush reads and writes them.
type templateUsage struct {
	template   string
	counts     [2][control.UsageClasses]atomic.Int64
	methods    atomic.Uint32
	lastSeen   atomic.Int64
	lastLegacy atomic.Int64

	sent        [2][control.UsageClasses]int64
	sentMethods uint32
	sentSeen    int64
	sentLegacy  int64
}

func newInventory() *inventory { return &inventory{routes: map[[2]string]*routeUsage{}} }

// route returns the counts of a route, made on first use.
func (inv *inventory) route(module, id string) *routeUsage {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	k := [2]string{module, id}
	ru := inv.routes[k]
	if ru == nil {
		ru = &routeUsage{module: module, route: id, inv: inv, other: &templateUsage{template: control.OtherTemplate}}
		ru.templates.Store(&map[string]*templateUsage{})
		inv.routes[k] = ru
	}
	return ru
}

// methodBit is the bit of control.UsageMethods for m, or 0.
func methodBit(m []byte) uint32 {
	for i, s := range control.UsageMethods {
		if string(m) == s {
			return 1 << i
		}
	}
	return 0
}

// observe counts a request of template tmpl answered by side with
// status (0: no answer) at now.
func (ru *routeUsage) observe(tmpl, method []byte, side, status int, now int64) {
	t := (*ru.templates.Load())[string(tmpl)]
	if t == nil {
		t = ru.add(tmpl)
	}
	t.counts[side][classOf(status)].Add(1)
	if bit := methodBit(method); bit != 0 && t.methods.Load()&bit == 0 {
		t.methods.Or(bit)
	}
	t.lastSeen.Store(now)
	ru.lastSeen[side].Store(now)
	if side == sideLegacy {
		t.lastLegacy.Store(now)
	}
}

// add returns the counts of a template seen for the first time, or the
// other bucket when a cap is reached.
func (ru *routeUsage) add(tmpl []byte) *templateUsage {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	cur := *ru.templates.Load()
	if t := cur[string(tmpl)]; t != nil {
		return t
	}
	if len(cur) >= control.MaxUsageTemplates || ru.inv.templates.Load() >= maxInventoryTemplates {
		return ru.other
	}
	ru.inv.templates.Add(1)
	t := &templateUsage{template: string(tmpl)}
	next := make(map[string]*templateUsage, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[t.template] = t
	ru.templates.Store(&next)
	return t
}

// templateCount is how many templates the route holds.
func (ru *routeUsage) templateCount() int { return len(*ru.templates.Load()) }

// each calls f with each template of the route, the other bucket last.
func (ru *routeUsage) each(f func(*templateUsage)) {
	for _, t := range *ru.templates.Load() {
		f(t)
	}
	f(ru.other)
}

// delta is what t counted since the last committed flush, and whether
// that is anything; snap is what a commit records as sent.
func (t *templateUsage) delta() (d control.Usage, snap templateSnap, any bool) {
	for s := range t.counts {
		for c := range t.counts[s] {
			v := t.counts[s][c].Load()
			snap.counts[s][c] = v
			n := v - t.sent[s][c]
			if n != 0 {
				any = true
			}
			if s == sideLegacy {
				d.Legacy[c] = n
			} else {
				d.Candidate[c] = n
			}
		}
	}
	snap.methods, snap.seen, snap.legacy = t.methods.Load(), t.lastSeen.Load(), t.lastLegacy.Load()
	any = any || snap.methods != t.sentMethods || snap.seen != t.sentSeen || snap.legacy != t.sentLegacy
	d.Template, d.Methods = t.template, snap.methods
	if snap.seen > 0 {
		d.LastSeen = time.Unix(0, snap.seen).UTC()
	}
	if snap.legacy > 0 {
		d.LastLegacy = time.Unix(0, snap.legacy).UTC()
	}
	return d, snap, any
}

type templateSnap struct {
	counts       [2][control.UsageClasses]int64
	methods      uint32
	seen, legacy int64
	template     *templateUsage
}

// UsageDeltas returns what the inventory counted since the last committed
// flush, and commit, which the caller calls once the store took the
// deltas, so that a failed flush is sent again with the next one. Routes
// that left the table and have nothing left to send are forgotten on
// commit. Until commit or a later call, no other UsageDeltas runs: the
// caller must call commit or release.
func (p *Plane) UsageDeltas() (deltas []control.Usage, commit, release func()) {
	inv := p.inv
	inv.flushMu.Lock()
	live := map[[2]string]bool{}
	if t := p.table.Load(); t != nil {
		for _, r := range t.routes {
			live[[2]string{r.Module, r.ID}] = true
		}
	}
	inv.mu.Lock()
	all := make([]*routeUsage, 0, len(inv.routes))
	for _, ru := range inv.routes {
		all = append(all, ru)
	}
	inv.mu.Unlock()
	var snaps []templateSnap
	var idle []*routeUsage
	for _, ru := range all {
		sent := 0
		ru.each(func(t *templateUsage) {
			d, snap, any := t.delta()
			if !any {
				return
			}
			sent++
			d.Module, d.Route = ru.module, ru.route
			snap.template = t
			deltas = append(deltas, d)
			snaps = append(snaps, snap)
		})
		if sent == 0 && !live[[2]string{ru.module, ru.route}] {
			idle = append(idle, ru)
		}
	}
	var once sync.Once
	release = func() { once.Do(inv.flushMu.Unlock) }
	commit = func() {
		for _, s := range snaps {
			t := s.template
			t.sent, t.sentMethods, t.sentSeen, t.sentLegacy = s.counts, s.methods, s.seen, s.legacy
		}
		inv.forget(idle, p)
		release()
	}
	return deltas, commit, release
}

// forget drops the routes in idle that are still not in the table that
// serves: they left it, and everything they counted was flushed.
func (inv *inventory) forget(idle []*routeUsage, p *Plane) {
	if len(idle) == 0 {
		return
	}
	live := map[[2]string]bool{}
	for _, r := range p.table.Load().routes {
		live[[2]string{r.Module, r.ID}] = true
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for _, ru := range idle {
		k := [2]string{ru.module, ru.route}
		if live[k] || inv.routes[k] != ru {
			continue
		}
		delete(inv.routes, k)
		ru.mu.Lock()
		inv.templates.Add(-int64(ru.templateCount()))
		ru.mu.Unlock()
	}
}

// inventoryCollector is the inventory's Prometheus series, made at each
// scrape from the routes of the table that serves, so that a route that
// left the table leaves /metrics with it and no series is kept per
// template: the labels are route, module and backend only.
type inventoryCollector struct {
	p                          *Plane
	lastSeen, templates, other *prometheus.Desc
}

func newInventoryCollector(p *Plane) *inventoryCollector {
	return &inventoryCollector{p: p,
		lastSeen: prometheus.NewDesc("strangler_proxy_route_last_seen_timestamp_seconds",
			"When a backend of the route last answered one of its requests, by route, module and backend, as Unix time.", []string{"route", "module", "backend"}, nil),
		templates: prometheus.NewDesc("strangler_proxy_route_templates",
			"Distinct path templates the traffic inventory holds for the route.", []string{"route", "module"}, nil),
		other: prometheus.NewDesc("strangler_proxy_route_template_overflow_total",
			"Requests of the route counted in its (other) template, once its templates reached the cap.", []string{"route", "module"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSeen
	ch <- c.templates
	ch <- c.other
}

// Collect implements prometheus.Collector.
func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.p.table.Load()
	for _, r := range t.routes {
		ru := r.usage
		backends := [2]string{r.Legacy, r.Candidate}
		for side, b := range backends {
			if at := ru.lastSeen[side].Load(); at > 0 && b != "" {
				ch <- prometheus.MustNewConstMetric(c.lastSeen, prometheus.GaugeValue, float64(at)/1e9, r.ID, r.Module, b)
			}
		}
		n := ru.templateCount()
		var other int64
		for s := range ru.other.counts {
			for k := range ru.other.counts[s] {
				other += ru.other.counts[s][k].Load()
			}
		}
		ch <- prometheus.MustNewConstMetric(c.templates, prometheus.GaugeValue, float64(n), r.ID, r.Module)
		ch <- prometheus.MustNewConstMetric(c.other, prometheus.CounterValue, float64(other), r.ID, r.Module)
	}
}

// appendTemplate is discover.AppendTemplate into the request's buffer.
func (s *reqState) appendTemplate() []byte {
	s.tmpl = discover.AppendTemplate(s.tmpl[:0], s.path)
	return s.tmpl
}
