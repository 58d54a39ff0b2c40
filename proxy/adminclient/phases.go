package adminclient

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
)

// Phases lists the modules whose extraction phase was ever set.
func (c *Client) Phases(ctx context.Context) ([]api.PhaseState, error) {
	var out []api.PhaseState
	return out, c.do(ctx, http.MethodGet, "/v1/phases", nil, nil, "", nil, &out)
}

// Phase returns a module's extraction phase; a module never set is in
// phase 0.
func (c *Client) Phase(ctx context.Context, module string) (*api.PhaseState, error) {
	var st api.PhaseState
	return &st, c.do(ctx, http.MethodGet, "/v1/phases/"+url.PathEscape(module), nil, nil, "", nil, &st)
}

func (c *Client) putJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, path, nil, b, "application/json", nil, out)
}

// SetPhase sets a module's extraction phase (and the canary weight of
// phase 3).
func (c *Client) SetPhase(ctx context.Context, module string, phase, weight int) (*api.PhaseState, error) {
	var st api.PhaseState
	return &st, c.putJSON(ctx, "/v1/phases/"+url.PathEscape(module), api.SetPhase{Phase: phase, Weight: weight}, &st)
}

// Ack records that component applied phase of module.
func (c *Client) Ack(ctx context.Context, module, component string, phase int) (*api.PhaseState, error) {
	var st api.PhaseState
	return &st, c.putJSON(ctx, "/v1/phases/"+url.PathEscape(module)+"/acks/"+url.PathEscape(component), api.Ack{Phase: phase}, &st)
}

// RecordVerify records a verify result for module.
func (c *Client) RecordVerify(ctx context.Context, module string, r api.VerifyResult) (*api.PhaseState, error) {
	var st api.PhaseState
	return &st, c.putJSON(ctx, "/v1/phases/"+url.PathEscape(module)+"/verify", r, &st)
}

// WatchPhase polls module's phase every interval until ctx ends. Each time
// the phase differs from the last one applied, it calls apply and, when
// apply succeeds, acknowledges the phase as component, so that the
// operator's CLI knows the component is ready for the phase's traffic. An
// unreachable admin API keeps the last phase applied and is retried.
func (c *Client) WatchPhase(ctx context.Context, module, component string, interval time.Duration, log *slog.Logger, apply func(ctx context.Context, phase int) error) error {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	applied, acked := -1, -1
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := c.Phase(ctx, module)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Debug("phase watch: admin API not reachable", "module", module, "error", err)
		case err == nil && st.Phase != applied:
			if aerr := apply(ctx, st.Phase); aerr != nil {
				log.Error("phase watch: apply failed", "module", module, "phase", st.Phase, "error", aerr)
				break
			}
			log.Info("phase applied", "module", module, "component", component, "phase", st.Name)
			applied = st.Phase
		}
		if err == nil && applied >= 0 && (acked != applied || st.Acks[component] != applied) {
			if _, err := c.Ack(ctx, module, component, applied); err == nil {
				acked = applied
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
