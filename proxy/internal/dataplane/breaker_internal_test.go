package dataplane

import (
	"io"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestBreakerIgnoresClientFaults: client faults count neither as the
// backend's failures nor as its successes, so they neither open the
// breaker nor dilute the failure ratio that should open it.
func TestBreakerIgnoresClientFaults(t *testing.T) {
	spec := &routes.BackendSpec{Name: "legacy", Breaker: routes.Breaker{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10,
		Interval: routes.Duration(time.Hour), OpenFor: routes.Duration(time.Hour), HalfOpenRequests: 1}}
	clientFault := func() (struct{}, error) { return struct{}{}, &clientError{io.ErrUnexpectedEOF} }
	failure := func() (struct{}, error) { return struct{}{}, errFailed }
	success := func() (struct{}, error) { return struct{}{}, nil }
	cases := []struct {
		name  string
		calls []func() (struct{}, error)
		want  gobreaker.State
	}{
		{"client faults alone", repeat(200, clientFault), gobreaker.StateClosed},
		{"half failures among client faults", append(repeat(30, clientFault), alternate(10, failure, success)...), gobreaker.StateOpen},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(spec, backendEnv{log: httpx.Discard, m: newMetrics(), watch: newWatchdog(), dial: dialTCP})
			for _, f := range tc.calls {
				_, _ = b.breaker.Execute(f)
			}
			if got := b.breaker.State(); got != tc.want {
				t.Fatalf("breaker %v, want %v (counts %+v)", got, tc.want, b.breaker.Counts())
			}
		})
	}
}

func repeat(n int, f func() (struct{}, error)) []func() (struct{}, error) {
	out := make([]func() (struct{}, error), n)
	for i := range out {
		out[i] = f
	}
	return out
}

func alternate(n int, a, b func() (struct{}, error)) []func() (struct{}, error) {
	var out []func() (struct{}, error)
	for range n {
		out = append(out, a, b)
	}
	return out
}
