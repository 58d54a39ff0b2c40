package dataplane

import (
	"testing"
	"time"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestBackendHealthCounts: an instance counts as healthy for a replica's
// report while the balancer may pick it and, on a backend with an active
// health check, only once a probe passed, since instances are taken to be
// healthy until their checks fail.
func TestBackendHealthCounts(t *testing.T) {
	hc := &routes.HealthCheck{Path: "/healthz", Interval: routes.Duration(time.Hour), UnhealthyAfter: 1, HealthyAfter: 1}
	for _, tc := range []struct {
		name string
		hc   *routes.HealthCheck
		// probes are the outcomes of each probe of both instances, in turn.
		probes []bool
		want   api.BackendHealth
	}{
		{"no health check", nil, nil, api.BackendHealth{Name: "svc", Instances: 2, Healthy: 2}},
		{"not probed yet", hc, nil, api.BackendHealth{Name: "svc", Instances: 2, Healthy: 0}},
		{"probe passed", hc, []bool{true}, api.BackendHealth{Name: "svc", Instances: 2, Healthy: 2}},
		{"probe failed", hc, []bool{false}, api.BackendHealth{Name: "svc", Instances: 2, Healthy: 0}},
		{"passed, then failed", hc, []bool{true, false}, api.BackendHealth{Name: "svc", Instances: 2, Healthy: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(&routes.BackendSpec{Name: "svc", HealthCheck: tc.hc}, backendEnv{log: httpx.Discard, m: newMetrics(), watch: newWatchdog(), dial: dialTCP})
			b.setInstances([]string{"http://127.0.0.1:1", "http://127.0.0.1:2"})
			for _, ok := range tc.probes {
				for _, in := range *b.instances.Load() {
					b.healthResult(in, ok, tc.hc)
				}
			}
			if got := b.health(); got != tc.want {
				t.Fatalf("health() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
