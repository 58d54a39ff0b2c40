package shop

import (
	"context"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/internal/cli"
)

func init() {
	ordersDSN := func(cfg *config.Config) string { return Services.Of(cfg).Orders.DSN }
	// `strangler migrate up orders` migrates the orders service's own
	// database: its read models, event store, outbox, the ACL's tables, the
	// saga log and the inbox.
	cli.RegisterMigrations("orders", ordersDSN, orders.Migrations)
	// `strangler projections rebuild orders` rebuilds its read models.
	cli.RegisterProjections("orders", ordersDSN, func(gdb *gorm.DB) (*eventsource.Runner, error) {
		return orders.NewProjections(gdb, eventsource.RunnerConfig{}, eventsource.RunnerOptions{})
	})
	// The orders service starts after the inventory service, its saga's
	// participant, and before the proxy, with which it registers.
	cli.RegisterUp(45, "orders-service", func(ctx context.Context, env *cli.UpEnv) ([]cli.Component, error) {
		c, err := ordersServiceComponent(env, true)
		if err != nil {
			return nil, err
		}
		return []cli.Component{c}, nil
	})
}

// ordersServiceComponent builds the extracted orders service with its read
// models' consumer, the forward sync of the monolith's orders and the
// relay of its outbox. Its participants are the inventory service `up`
// runs (else services.orders.inventory_url) and the monolith's payments
// module (the monolith `up` runs, else services.orders.payments_url). It
// registers with the proxy's admin API as the inventory service does. In
// `up` it also runs the back sync into the monolith's database, which
// applies only the service's own order events, so it idles until the
// ownership flip sends the service the writes. Its phase watcher applies
// the orders phases as the orders-service component: the service owns the
// order writes from the flip and refuses them (409 not-owner) below it.
func ordersServiceComponent(env *cli.UpEnv, inUp bool) (cli.Component, error) {
	all := env.Config()
	cfg := Services.Of(all).Orders
	registerWithProxy(all, &cfg.RegisterWith)
	if u := env.Addr("inventory-service"); u != "" {
		cfg.InventoryURL = u
	}
	if u := env.Addr("monolith"); u != "" {
		cfg.PaymentsURL = u
	}
	if inUp && cfg.Sync.BackSyncDSN == "" {
		cfg.Sync.BackSyncDSN = Monolith.Of(all).DSN
	}
	log := env.Log().With("component", "orders-service")
	svc, err := orders.New(cfg, orders.Options{Brokers: cli.KafkaBrokers(all), Kafka: all.Kafka, Logger: log})
	if err != nil {
		return cli.Component{}, err
	}
	note := "db " + db.Redact(cfg.DSN) + ", inventory " + cfg.InventoryURL + ", payments " + cfg.PaymentsURL
	if cfg.Sync.BackSyncDSN != "" {
		note += ", back sync to " + db.Redact(cfg.Sync.BackSyncDSN)
	}
	run := func(ctx context.Context) error {
		// The watcher switches the service's ownership before it
		// acknowledges a phase: owner from the flip, a read replica
		// refusing order writes below it. Its forward sync skips its own
		// events and its back sync applies only those, so the syncs need
		// no switch.
		return runWatched(ctx, svc.Run, svc.Ready(), all, log, "orders", "orders-service", applyOwnership("orders", svc))
	}
	addr := func() string { return "http://" + svc.Addr() }
	return cli.Component{Name: "orders-service", Addr: addr, Note: note, Run: run, Started: svc.Started(), Close: svc.Close}, nil
}

func newOrdersServiceCmd(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orders",
		Short: "Run the extracted orders service",
		Long: `Run the extracted orders service (default 127.0.0.1:9103) with its own
database: its event store, read models, outbox and relay, the local read
models of the monolith's customers and prices (consumer group
orders-service-readmodels), and the saga orchestrator that places orders
across the inventory service (--inventory-url) and the monolith's payments
module (--payments-url), and the forward sync of the monolith's orders (consumer
group orders-service). It serves the monolith's /api/orders contract, the
saga admin API under /v1 (strangler sagas --service http://ADDR/v1, with the
proxy's admin token), and registers with the proxy's service registry as
service "orders". It serves reads from the start and refuses order writes
(409 not-owner) until the ownership flip: the phase watcher, or PUT
/v1/ownership {"owner": true} with the proxy's admin token. With
--back-sync-dsn it also applies its own order events to the monolith's
orders tables in that database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.RunOne(cmd, func(env *cli.UpEnv) (cli.Component, error) { return ordersServiceComponent(env, false) })
		},
	}
	a.BindString(cmd, "addr", "services.orders.addr", "listen address (default 127.0.0.1:9103)")
	a.BindString(cmd, "dsn", "services.orders.dsn", "the service's own database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/orders.db)")
	a.BindString(cmd, "inventory-url", "services.orders.inventory_url", "the inventory service (default http://127.0.0.1:9101)")
	a.BindString(cmd, "payments-url", "services.orders.payments_url", "the monolith, whose payments module authorizes (default http://127.0.0.1:9001)")
	a.BindString(cmd, "back-sync-dsn", "services.orders.sync.back_sync_dsn", "the monolith's database, to apply the service's orders to after the flip (default: none)")
	a.BindString(cmd, "brokers", "kafka.brokers", "Kafka bootstrap brokers, comma-separated (default: the embedded broker at broker.addr)")
	return cmd
}
