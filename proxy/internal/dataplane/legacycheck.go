package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// legacyCheck is the proxy's own check of its legacy backends. A legacy
// that accepts no connection makes every request it serves fail with 502,
// and a proxy in front of it that says it is ready hides that. So while
// Run runs, every interval, the check connects to the instances of each
// backend that some route uses as legacy; a backend is reachable when one
// of them accepts. It warns at start and whenever a backend becomes
// unreachable, fails the admin listener's /readyz meanwhile, and keeps a
// gauge and a counter of its results.
type legacyCheck struct {
	p         *Plane
	interval  time.Duration
	reachable *prometheus.GaugeVec
	checks    *prometheus.CounterVec

	mu      sync.Mutex
	checked bool
	last    map[string]error // backend → nil, or why it is unreachable
}

func newLegacyCheck(p *Plane, interval time.Duration) *legacyCheck {
	c := &legacyCheck{p: p, interval: interval,
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_proxy_legacy_reachable",
			Help: "1 while the proxy's own check reaches the legacy backend (an instance accepts connections), 0 while it does not.",
		}, []string{"backend"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_legacy_checks_total",
			Help: "The proxy's own checks of its legacy backends, by backend and result (ok, unreachable).",
		}, []string{"backend", "result"}),
	}
	p.m.reg.MustRegister(c.reachable, c.checks)
	return c
}

// run checks at once, then every interval, until ctx ends.
func (c *legacyCheck) run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// legacyBackends are the backends that some route of t uses as legacy.
func legacyBackends(t *runtimeTable) map[string]*backend {
	out := map[string]*backend{}
	for _, r := range t.routes {
		if r.legacy != nil {
			out[r.legacy.name] = r.legacy
		}
	}
	return out
}

// check checks every legacy backend once and reports the changes.
func (c *legacyCheck) check(ctx context.Context) {
	results := map[string]error{}
	backends := legacyBackends(c.p.table.Load())
	for name, b := range backends {
		results[name] = reach(b)
	}
	if ctx.Err() != nil {
		return // a check cut short by Run's end says nothing
	}
	c.mu.Lock()
	first, prev := !c.checked, c.last
	c.checked, c.last = true, results
	c.mu.Unlock()
	for name, err := range results {
		wasDown := prev[name] != nil
		if err != nil {
			// The pooled connections to a legacy that refuses new ones
			// lead to a process that is gone; were they kept, the first
			// requests once it is back would fail over them.
			backends[name].closeIdle()
			c.reachable.WithLabelValues(name).Set(0)
			c.checks.WithLabelValues(name, "unreachable").Inc()
			if first || !wasDown {
				c.p.log.Warn("legacy backend unreachable: the requests it serves get 502 until it accepts connections, and /readyz fails meanwhile",
					"backend", name, "error", err)
			}
			continue
		}
		c.reachable.WithLabelValues(name).Set(1)
		c.checks.WithLabelValues(name, "ok").Inc()
		if wasDown {
			c.p.log.Info("legacy backend reachable again", "backend", name)
		}
	}
	for name := range prev {
		if _, ok := results[name]; !ok {
			c.reachable.DeleteLabelValues(name) // no longer a legacy
		}
	}
}

// reach connects to b's instances until one accepts.
func reach(b *backend) error {
	list := *b.instances.Load()
	if len(list) == 0 {
		return errNoInstance
	}
	var errs []error
	for _, in := range list {
		conn, err := in.dial(0)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", in.key, err))
	}
	return errors.Join(errs...)
}

// ready is the /readyz check: it fails before the first check and while a
// legacy backend is unreachable, and names the backends.
func (c *legacyCheck) ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.checked {
		return errors.New("legacy not checked yet")
	}
	var names []string
	for n, err := range c.last {
		if err != nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("legacy backend unreachable: %s", strings.Join(names, ", "))
}
