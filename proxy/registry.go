package proxy

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
)

// registry is the service registry over the control store: instances
// register through the admin API for a TTL that their heartbeat renews,
// and the backends of a service follow its live instances.
type registry struct {
	store    control.Store
	log      *slog.Logger
	onChange func(service string)

	// mu guards last: each service's instance URLs as the backends last
	// heard of them, for run to tell which services changed.
	mu   sync.Mutex
	last map[string][]string
}

// DefaultTTL is a registration's lifetime when the instance names none.
const DefaultTTL = 30 * time.Second

func newRegistry(store control.Store, log *slog.Logger, onChange func(string)) *registry {
	return &registry{store: store, log: log, onChange: onChange, last: map[string][]string{}}
}

// register adds or renews an instance and reports whether it is new.
func (r *registry) register(ctx context.Context, service, url string, ttl time.Duration) (bool, error) {
	created, err := r.store.Register(ctx, service, url, ttl)
	if err == nil && created {
		r.onChange(service)
	}
	return created, err
}

// deregister removes an instance and reports whether it was there.
func (r *registry) deregister(ctx context.Context, service, url string) (bool, error) {
	ok, err := r.store.Deregister(ctx, service, url)
	if err == nil && ok {
		r.onChange(service)
	}
	return ok, err
}

// urls lists a service's live instances, sorted.
func (r *registry) urls(service string) ([]string, error) {
	all, err := r.store.Instances(context.Background())
	if err != nil {
		return nil, err
	}
	return instanceURLs(all[service]), nil
}

func instanceURLs(list []control.Instance) []string {
	out := make([]string, 0, len(list))
	for _, in := range list {
		out = append(out, in.URL)
	}
	return out
}

func (r *registry) list(ctx context.Context) ([]api.Service, error) {
	all, err := r.store.Instances(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.Service{}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		s := api.Service{Name: name, Instances: []api.RegisteredInstance{}}
		for _, in := range all[name] {
			s.Instances = append(s.Instances, api.RegisteredInstance{URL: in.URL, ExpiresAt: in.ExpiresAt.UTC()})
		}
		out = append(out, s)
	}
	return out, nil
}

// run tells onChange of the services whose instances changed, by
// expiry or through another proxy sharing the store, until ctx ends.
func (r *registry) run(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all, err := r.store.Instances(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("service registry not read; the backends keep their instances", "error", err)
			}
			continue
		}
		var changed []string
		r.mu.Lock()
		for name, list := range all {
			if urls := instanceURLs(list); !slices.Equal(urls, r.last[name]) {
				r.last[name] = urls
				changed = append(changed, name)
			}
		}
		for name := range r.last {
			if _, ok := all[name]; !ok {
				delete(r.last, name)
				changed = append(changed, name)
			}
		}
		r.mu.Unlock()
		slices.Sort(changed)
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
			p.setServiceInstances(b)
		}
	}
}

// syncServices refreshes every service backend, after a table swap.
func (p *Proxy) syncServices() {
	t := p.table.Load()
	for _, b := range t.backends {
		if b.spec.Service != "" {
			p.setServiceInstances(b)
		}
	}
}

// setServiceInstances points b at its service's live instances. If the
// registry cannot be read, b keeps the instances it has.
func (p *Proxy) setServiceInstances(b *backend) {
	urls, err := p.registry.urls(b.spec.Service)
	if err != nil {
		p.log.Warn("service registry not read; the backend keeps its instances", "backend", b.name, "error", err)
		return
	}
	b.setInstances(urls)
}
