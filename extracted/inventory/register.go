package inventory

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/proxy/adminclient"
)

// Keep keeps the instance listening on addr registered with the proxy's
// registry until ctx ends, for any extracted service that registers the
// way this one does. A proxy that cannot be reached is logged and tried
// again; it never stops the service.
func (rc RegisterConfig) Keep(ctx context.Context, log *slog.Logger, addr string) {
	instance := rc.InstanceURL
	if instance == "" {
		instance = "http://" + addr
	}
	log = log.With("part", "registry", "admin", rc.AdminURL, "service", rc.Service, "instance", instance)
	for ctx.Err() == nil {
		token := rc.AdminToken()
		if token == "" {
			log.Warn("no admin token yet; registration retried", "token_file", rc.TokenFile)
		} else if c, err := adminclient.New(rc.AdminURL, token); err != nil {
			log.Error("registration disabled", "error", err)
			return
		} else {
			log.Info("registering with the proxy")
			_ = c.Keepalive(ctx, rc.Service, instance, rc.TTL, func(err error) {
				log.Warn("registration heartbeat failed; retrying", "error", err)
			})
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// AdminToken is the proxy's admin token: Token, else the content of
// TokenFile, read each time so that a token the proxy writes after the
// service started counts; "" when there is none.
func (rc RegisterConfig) AdminToken() string {
	if rc.Token != "" || rc.TokenFile == "" {
		return rc.Token
	}
	b, err := os.ReadFile(rc.TokenFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
