package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
)

// watchPhase runs apply each time the extraction phase of module changes,
// as held by the proxy's admin API, and acknowledges it as component, until
// ctx ends. The admin token is read when it is there: in `up`, the proxy
// writes it after the other parts are built. An admin API that cannot be
// reached keeps the component in the phase it last applied.
func WatchPhase(ctx context.Context, cfg *config.Config, log *slog.Logger, module, component string, apply func(ctx context.Context, c *adminclient.Client, phase int) error) error {
	var c *adminclient.Client
	for c == nil {
		token := cfg.Proxy.AdminToken
		if token == "" {
			token, _ = proxy.ReadToken(cfg.Proxy.AdminTokenFile)
		}
		if token != "" {
			var err error
			if c, err = adminclient.New(cfg.Proxy.AdminAddr, token, adminclient.WithActor(component)); err != nil {
				return fmt.Errorf("%s: phase watcher: %w", component, err)
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	err := c.WatchPhase(ctx, module, component, 200*time.Millisecond, log, func(ctx context.Context, ph int) error {
		return apply(ctx, c, ph)
	})
	if err != nil {
		return fmt.Errorf("%s: phase watcher: %w", component, err)
	}
	return nil
}

// awaitAck waits until other has acknowledged a phase that satisfies ok,
// then lets calls that other started before it switched finish. Two
// components that must switch in order at a phase use it: at the ownership
// flip the service takes writes before the monolith calls it, and on the
// way back the monolith stops calling it before it stops taking writes.
func AwaitAck(ctx context.Context, c *adminclient.Client, module, other string, ok func(phase int) bool) error {
	for {
		st, err := c.Phase(ctx, module)
		if err == nil {
			if ph, acked := st.Acks[other]; acked && ok(ph) {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(callGrace):
		return nil
	}
}

// callGrace covers calls in flight when a component switched: longer than
// the ACL client's timeout would be safest, but those calls are reserve
// and release requests that finish in milliseconds.
const callGrace = 300 * time.Millisecond
