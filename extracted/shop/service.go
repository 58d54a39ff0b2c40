package shop

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/internal/cli"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"golang.org/x/sync/errgroup"
)

func init() {
	cli.RegisterCommand(newServiceCmd)
	// `strangler migrate up inventory` migrates the service's own database.
	cli.RegisterMigrations("inventory", func(cfg *config.Config) string { return Services.Of(cfg).Inventory.DSN }, inventory.Migrations)
	// The service starts after the relay and before the proxy, with which
	// it registers.
	cli.RegisterUp(40, "inventory-service", func(ctx context.Context, env *cli.UpEnv) ([]cli.Component, error) {
		c, err := inventoryServiceComponent(env, true)
		if err != nil {
			return nil, err
		}
		return []cli.Component{c}, nil
	})
}

// inventoryServiceURL is where the monolith reaches the extracted
// inventory service: the one `up` runs, else services.inventory.addr.
func inventoryServiceURL(env *cli.UpEnv) string {
	if u := env.Addr("inventory-service"); u != "" {
		return u
	}
	return "http://" + Services.Of(env.Config()).Inventory.Addr
}

// inventoryServiceComponent builds the extracted inventory service with
// its forward sync and the relay of its outbox. It registers with the
// proxy's admin API (proxy.admin_addr and its token, unless
// services.inventory.register_with says otherwise). In `up` it also runs
// the back sync into the monolith's database, which applies only the
// service's own changes, so it idles until the ownership flip.
func inventoryServiceComponent(env *cli.UpEnv, inUp bool) (cli.Component, error) {
	all := env.Config()
	cfg := Services.Of(all).Inventory
	registerWithProxy(all, &cfg.RegisterWith)
	if inUp && cfg.Sync.BackSyncDSN == "" {
		cfg.Sync.BackSyncDSN = Monolith.Of(all).DSN
	}
	log := env.Log().With("component", "inventory-service")
	svc, err := inventory.New(cfg, inventory.Options{
		Brokers: cli.KafkaBrokers(all),
		Kafka:   all.Kafka,
		Logger:  log,
	})
	if err != nil {
		return cli.Component{}, err
	}
	note := "db " + db.Redact(cfg.DSN)
	if cfg.Sync.BackSyncDSN != "" {
		note += ", back sync to " + db.Redact(cfg.Sync.BackSyncDSN)
	}
	run := func(ctx context.Context) error {
		return runWatched(ctx, svc.Run, svc.Ready(), all, log, "inventory", "inventory-service", applyOwnership("inventory", svc))
	}
	addr := func() string { return "http://" + svc.Addr() }
	return cli.Component{Name: "inventory-service", Addr: addr, Note: note, Run: run, Started: svc.Started(), Close: svc.Close}, nil
}

// applyOwnership is the phase watcher's step of a service whose module's
// writes it owns from the flip: it makes sw the owner from phase flip on and
// a read replica below. On the way back the monolith first acknowledges a
// phase below the flip, so that it takes writes again (and, for the
// inventory, stops calling the service) before the service refuses them.
// Giving ownership is not ordered here: the proxy sends the service writes
// only once every component has acknowledged the flip.
func applyOwnership(module string, sw servicekit.Switch) func(context.Context, *adminclient.Client, int) error {
	return func(ctx context.Context, c *adminclient.Client, ph int) error {
		owner := phase.Phase(ph) >= phase.Flip
		if !owner && sw.Owner() {
			if err := cli.AwaitAck(ctx, c, module, "monolith", func(p int) bool { return phase.Phase(p) < phase.Flip }); err != nil {
				return err
			}
		}
		return sw.SetOwner(ctx, owner)
	}
}

// runWatched runs a service (run) with the phase watcher that applies
// module's phases as component, started once the service is ready (its
// database migrated), until ctx ends or either fails.
func runWatched(ctx context.Context, run func(context.Context) error, ready <-chan struct{}, all *config.Config, log *slog.Logger, module, component string, apply func(context.Context, *adminclient.Client, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return run(gctx) })
	g.Go(func() error {
		select {
		case <-ready:
		case <-gctx.Done():
			return nil
		}
		return cli.WatchPhase(gctx, all, log, module, component, apply)
	})
	return g.Wait()
}

// registerWithProxy fills in the proxy's admin API and its token where a
// service's register_with names none.
func registerWithProxy(all *config.Config, rw *servicekit.RegisterConfig) {
	if rw.AdminURL == "" {
		rw.AdminURL = "http://" + all.Proxy.AdminAddr
	}
	if rw.Token == "" && rw.TokenFile == "" {
		rw.Token = all.Proxy.AdminToken
		rw.TokenFile = all.Proxy.AdminTokenFile
	}
}

func newServiceCmd(a *cli.App) *cobra.Command {
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
			return a.RunOne(cmd, func(env *cli.UpEnv) (cli.Component, error) { return inventoryServiceComponent(env, false) })
		},
	}
	a.BindString(inv, "addr", "services.inventory.addr", "listen address (default 127.0.0.1:9101)")
	a.BindString(inv, "dsn", "services.inventory.dsn", "the service's own database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/inventory.db)")
	a.BindString(inv, "back-sync-dsn", "services.inventory.sync.back_sync_dsn", "the monolith's database, to apply the service's changes to after the flip (default: none)")
	a.BindString(inv, "brokers", "kafka.brokers", "Kafka bootstrap brokers, comma-separated (default: the embedded broker at broker.addr)")
	cmd.AddCommand(inv, newOrdersServiceCmd(a))
	return cmd
}
