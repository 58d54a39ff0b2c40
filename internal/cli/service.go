package cli

import (
	"context"
	"github.com/stranglerkit/strangler/extracted/shop"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"golang.org/x/sync/errgroup"
)

func init() {
	register(newServiceCmd)
	// `strangler migrate up inventory` migrates the service's own database.
	registerMigrations("inventory", func(cfg *config.Config) string { return shop.Services.Of(cfg).Inventory.DSN }, inventory.Migrations)
	registerUp(40, func(ctx context.Context, env *upEnv) ([]component, error) {
		c, err := inventoryServiceComponent(env, true)
		if err != nil {
			return nil, err
		}
		return []component{c}, nil
	})
}

// inventoryServiceComponent builds the extracted inventory service with
// its forward sync and the relay of its outbox. It registers with the
// proxy's admin API (proxy.admin_addr and its token, unless
// services.inventory.register_with says otherwise). In `up` it also runs
// the back sync into the monolith's database, which applies only the
// service's own changes, so it idles until the ownership flip.
func inventoryServiceComponent(env *upEnv, inUp bool) (component, error) {
	cfg := shop.Services.Of(env.cfg).Inventory
	rw := &cfg.RegisterWith
	if rw.AdminURL == "" {
		rw.AdminURL = "http://" + env.cfg.Proxy.AdminAddr
	}
	if rw.Token == "" && rw.TokenFile == "" {
		rw.Token = env.cfg.Proxy.AdminToken
		rw.TokenFile = env.cfg.Proxy.AdminTokenFile
	}
	if inUp && cfg.Sync.BackSyncDSN == "" {
		cfg.Sync.BackSyncDSN = (*shop.Monolith.Of(env.cfg)).DSN
	}
	svc, err := inventory.New(cfg, inventory.Options{
		Brokers: kafkaBrokers(env.cfg),
		Kafka:   env.cfg.Kafka,
		Logger:  env.log.With("component", "inventory-service"),
	})
	if err != nil {
		return component{}, err
	}
	note := "db " + db.Redact(cfg.DSN)
	if cfg.Sync.BackSyncDSN != "" {
		note += ", back sync to " + db.Redact(cfg.Sync.BackSyncDSN)
	}
	log := env.log.With("component", "inventory-service")
	run := func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return svc.Run(gctx) })
		g.Go(func() error {
			select {
			case <-svc.Ready():
			case <-gctx.Done():
				return nil
			}
			return watchPhase(gctx, env.cfg, log, "inventory", "inventory-service", func(ctx context.Context, c *adminclient.Client, ph int) error {
				owner := phase.Phase(ph) >= phase.Flip
				if !owner && svc.Owner() {
					// The monolith stops calling the service before it
					// stops taking writes.
					if err := awaitAck(ctx, c, "inventory", "monolith", func(p int) bool { return phase.Phase(p) < phase.Flip }); err != nil {
						return err
					}
				}
				return svc.SetOwner(ctx, owner)
			})
		})
		return g.Wait()
	}
	addr := func() string { return "http://" + svc.Addr() }
	return component{
		name: "inventory-service", addr: addr, note: note, run: run, started: svc.Started(), close: svc.Close,
		onStarted: func() { env.inventoryURL = addr() },
	}, nil
}

func newServiceCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Run an extracted service on its own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	inv := &cobra.Command{
		Use:   "inventory",
		Short: "Run the extracted inventory service",
		Long: `Run the extracted inventory service (default 127.0.0.1:9101) with its own
database, its forward sync from the monolith's stock and product events
(consumer group inventory-service), and the relay of its own outbox. It
serves its own API under /v1 and the monolith's /api/inventory contract
through the anti-corruption layer, registers with the proxy's service
registry, and refuses writes (409 not-owner) until the ownership flip:
the phase watcher, or PUT /v1/ownership {"owner": true} with the proxy's
admin token. With --back-sync-dsn it also applies
its own changes to the monolith's inventory tables in that database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runOne(cmd, func(env *upEnv) (component, error) { return inventoryServiceComponent(env, false) })
		},
	}
	a.BindString(inv, "addr", "services.inventory.addr", "listen address (default 127.0.0.1:9101)")
	a.BindString(inv, "dsn", "services.inventory.dsn", "the service's own database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/inventory.db)")
	a.BindString(inv, "back-sync-dsn", "services.inventory.sync.back_sync_dsn", "the monolith's database, to apply the service's changes to after the flip (default: none)")
	a.BindString(inv, "brokers", "kafka.brokers", "Kafka bootstrap brokers, comma-separated (default: the embedded broker at broker.addr)")
	cmd.AddCommand(inv)
	return cmd
}
