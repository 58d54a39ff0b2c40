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
		c, err := ordersServiceComponent(env)
		if err != nil {
			return nil, err
		}
		return []cli.Component{c}, nil
	})
}

// ordersServiceComponent builds the extracted orders service with its read
// models' consumer and the relay of its outbox. Its participants are the
// inventory service `up` runs (else services.orders.inventory_url) and the
// monolith's payments module (the monolith `up` runs, else
// services.orders.payments_url). It registers with the proxy's admin API
// as the inventory service does.
func ordersServiceComponent(env *cli.UpEnv) (cli.Component, error) {
	all := env.Config()
	cfg := Services.Of(all).Orders
	registerWithProxy(all, &cfg.RegisterWith)
	if u := env.Addr("inventory-service"); u != "" {
		cfg.InventoryURL = u
	}
	if u := env.Addr("monolith"); u != "" {
		cfg.PaymentsURL = u
	}
	svc, err := orders.New(cfg, orders.Options{Brokers: cli.KafkaBrokers(all), Kafka: all.Kafka, Logger: env.Log().With("component", "orders-service")})
	if err != nil {
		return cli.Component{}, err
	}
	note := "db " + db.Redact(cfg.DSN) + ", inventory " + cfg.InventoryURL + ", payments " + cfg.PaymentsURL
	addr := func() string { return "http://" + svc.Addr() }
	return cli.Component{Name: "orders-service", Addr: addr, Note: note, Run: svc.Run, Started: svc.Started(), Close: svc.Close}, nil
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
module (--payments-url). It serves the monolith's /api/orders contract, the
saga admin API under /v1 (strangler sagas --service http://ADDR/v1, with the
proxy's admin token), and registers with the proxy's service registry as
service "orders".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.RunOne(cmd, ordersServiceComponent)
		},
	}
	a.BindString(cmd, "addr", "services.orders.addr", "listen address (default 127.0.0.1:9103)")
	a.BindString(cmd, "dsn", "services.orders.dsn", "the service's own database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/orders.db)")
	a.BindString(cmd, "inventory-url", "services.orders.inventory_url", "the inventory service (default http://127.0.0.1:9101)")
	a.BindString(cmd, "payments-url", "services.orders.payments_url", "the monolith, whose payments module authorizes (default http://127.0.0.1:9001)")
	a.BindString(cmd, "brokers", "kafka.brokers", "Kafka bootstrap brokers, comma-separated (default: the embedded broker at broker.addr)")
	return cmd
}
