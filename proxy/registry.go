package proxy

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
)

// registry holds the service instances that registered through the admin
// API. A registration lasts its TTL; the instance's heartbeat renews it.
type registry struct {
	mu       sync.Mutex
	services map[string]map[string]time.Time // service → URL → expiry
	onChange func(service string)
}

// DefaultTTL is a registration's lifetime when the instance names none.
const DefaultTTL = 30 * time.Second

func newRegistry(onChange func(string)) *registry {
	return &registry{services: map[string]map[string]time.Time{}, onChange: onChange}
}

// register adds or renews an instance and reports whether it is new.
func (r *registry) register(service, url string, ttl time.Duration) bool {
	r.mu.Lock()
	insts := r.services[service]
	if insts == nil {
		insts = map[string]time.Time{}
		r.services[service] = insts
	}
	_, existed := insts[url]
	insts[url] = time.Now().Add(ttl)
	r.mu.Unlock()
	if !existed {
		r.onChange(service)
	}
	return !existed
}

// deregister removes an instance and reports whether it was there.
func (r *registry) deregister(service, url string) bool {
	r.mu.Lock()
	_, ok := r.services[service][url]
	delete(r.services[service], url)
	r.mu.Unlock()
	if ok {
		r.onChange(service)
	}
	return ok
}

// urls lists a service's live instances, sorted.
func (r *registry) urls(service string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := []string{}
	for u, exp := range r.services[service] {
		if exp.After(now) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

func (r *registry) list() []api.Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []api.Service{}
	for name, insts := range r.services {
		s := api.Service{Name: name, Instances: []api.RegisteredInstance{}}
		for u, exp := range insts {
			s.Instances = append(s.Instances, api.RegisteredInstance{URL: u, ExpiresAt: exp.UTC()})
		}
		sort.Slice(s.Instances, func(i, j int) bool { return s.Instances[i].URL < s.Instances[j].URL })
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// run expires registrations until ctx ends.
func (r *registry) run(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var changed []string
		r.mu.Lock()
		for name, insts := range r.services {
			for u, exp := range insts {
				if !exp.After(now) {
					delete(insts, u)
					changed = append(changed, name)
				}
			}
		}
		r.mu.Unlock()
		for _, s := range changed {
			r.onChange(s)
		}
	}
}

// servicesChanged points the backends of a service at its instances.
func (p *Proxy) servicesChanged(service string) {
	t := p.table.Load()
	if t == nil {
		return
	}
	for _, b := range t.backends {
		if b.spec.Service == service {
			b.setInstances(p.registry.urls(service))
		}
	}
}

// syncServices refreshes every service backend, after a table swap.
func (p *Proxy) syncServices() {
	t := p.table.Load()
	for _, b := range t.backends {
		if b.spec.Service != "" {
			b.setInstances(p.registry.urls(b.spec.Service))
		}
	}
}
