package control

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
)

// Registry is the service registry over the Store: instances register
// through the admin API for a TTL that their heartbeat renews, and the
// backends of a service follow its live instances.
type Registry struct {
	store    Store
	log      *slog.Logger
	onChange func(service string)

	// mu guards last: each service's instance URLs as the backends last
	// heard of them, for run to tell which services changed.
	mu   sync.Mutex
	last map[string][]string
}

// DefaultTTL is a registration's lifetime when the instance names none.
const DefaultTTL = 30 * time.Second

// NewRegistry is the registry over store. onChange is told of each
// service whose instances changed: at once for a registration through
// this registry, within Run's period for an expiry or another writer's.
func NewRegistry(store Store, log *slog.Logger, onChange func(service string)) *Registry {
	return &Registry{store: store, log: log, onChange: onChange, last: map[string][]string{}}
}

// Register adds or renews an instance and reports whether it is new.
func (r *Registry) Register(ctx context.Context, service, url string, ttl time.Duration) (bool, error) {
	created, err := r.store.Register(ctx, service, url, ttl)
	if err != nil {
		return false, &StoreError{Op: "register an instance", Err: err}
	}
	if created {
		r.onChange(service)
	}
	return created, nil
}

// Deregister removes an instance and reports whether it was there.
func (r *Registry) Deregister(ctx context.Context, service, url string) (bool, error) {
	ok, err := r.store.Deregister(ctx, service, url)
	if err != nil {
		return false, &StoreError{Op: "deregister an instance", Err: err}
	}
	if ok {
		r.onChange(service)
	}
	return ok, nil
}

// URLs lists a service's live instances, sorted.
func (r *Registry) URLs(service string) ([]string, error) {
	all, err := r.store.Instances(context.Background())
	if err != nil {
		return nil, &StoreError{Op: "list the instances", Err: err}
	}
	return instanceURLs(all[service]), nil
}

func instanceURLs(list []Instance) []string {
	out := make([]string, 0, len(list))
	for _, in := range list {
		out = append(out, in.URL)
	}
	return out
}

// List is every service with its live instances, sorted, for the admin
// API.
func (r *Registry) List(ctx context.Context) ([]api.Service, error) {
	all, err := r.store.Instances(ctx)
	if err != nil {
		return nil, &StoreError{Op: "list the instances", Err: err}
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

// Run tells onChange of the services whose instances changed, by expiry
// or through another proxy sharing the store, until ctx ends.
func (r *Registry) Run(ctx context.Context) {
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
