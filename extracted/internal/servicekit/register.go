package servicekit

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/proxy/adminclient"
)

// RegisterConfig says where an extracted service registers itself with
// the proxy's service registry (its register_with). Both services use it,
// so it lives here rather than in either.
type RegisterConfig struct {
	// Enabled turns registration on. If nil, true. A registration that
	// fails is logged and retried; it never stops the service.
	Enabled *bool `yaml:"enabled"`
	// AdminURL is the proxy's admin API. If empty, the command that runs
	// the service fills in proxy.admin_addr.
	AdminURL string `yaml:"admin_url"`
	// Token is the admin API's bearer token. If empty, the token in
	// TokenFile (by default the proxy's) is used. The service's own PUT
	// /v1/ownership requires the same token, and is closed (403) when
	// there is none.
	Token string `yaml:"token" secret:"true"`
	// TokenFile holds the token when Token is empty.
	TokenFile string `yaml:"token_file"`
	// Service is the name the proxy's routes use as candidate backend. If
	// empty, the service's own name ("inventory", "orders").
	Service string `yaml:"service"`
	// InstanceURL is the URL the proxy reaches this instance at. If empty,
	// "http://" + the address the service listens on.
	InstanceURL string `yaml:"instance_url"`
	// TTL is how long a registration lasts without a heartbeat; heartbeats
	// come every TTL/3. If zero, 15s.
	TTL time.Duration `yaml:"ttl"`
}

// SetDefaults fills the empty fields; service is the default Service.
func (rc *RegisterConfig) SetDefaults(service string) {
	if rc.Enabled == nil {
		t := true
		rc.Enabled = &t
	}
	if rc.Service == "" {
		rc.Service = service
	}
	if rc.TTL == 0 {
		rc.TTL = 15 * time.Second
	}
}

// On reports whether the service registers with the proxy: Enabled is nil
// or true.
func (rc RegisterConfig) On() bool { return rc.Enabled == nil || *rc.Enabled }

// Keep keeps the instance listening on addr registered with the proxy's
// registry until ctx ends. A proxy that cannot be reached is logged and
// tried again; it never stops the service.
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
