package cli

import (
	"context"
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
func watchPhase(ctx context.Context, cfg *config.Config, log *slog.Logger, module, component string, apply func(ctx context.Context, phase int) error) error {
	var c *adminclient.Client
	for c == nil {
		token := cfg.Proxy.AdminToken
		if token == "" {
			token, _ = proxy.ReadToken(cfg.Proxy.AdminTokenFile)
		}
		if token != "" {
			var err error
			if c, err = adminclient.New(cfg.Proxy.AdminAddr, token, adminclient.WithActor(component)); err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	return c.WatchPhase(ctx, module, component, 200*time.Millisecond, log, apply)
}
