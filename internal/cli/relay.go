package cli

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/httpx"
)

func init() {
	register(newRelayCmd)
	RegisterUp(30, "relay", func(ctx context.Context, env *UpEnv) ([]Component, error) {
		c, err := relayComponent(env)
		if err != nil {
			return nil, err
		}
		return []Component{c}, nil
	})
}

// relayDSN is the database whose outbox the relay publishes: relay.dsn, or
// the legacy system's (the shop's monolith.dsn).
func relayDSN(cfg *config.Config) string {
	if cfg.Relay.DSN != "" {
		return cfg.Relay.DSN
	}
	return legacyDSN(cfg)
}

// relayComponent builds the relay with its metrics and health endpoint. Its
// run listens, then migrates the outbox set, so that the relay works on a
// fresh database.
func relayComponent(env *UpEnv) (Component, error) {
	cfg := env.cfg.Relay
	cfg.DSN = relayDSN(env.cfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := env.log.With("component", "relay")
	r, err := relay.New(cfg, relay.Options{Brokers: KafkaBrokers(env.cfg), Kafka: env.cfg.Kafka, Logger: log, Registerer: reg})
	if err != nil {
		return Component{}, err
	}
	ep := httpx.NewEndpoint(cfg.MetricsAddr)
	health := &httpx.Health{}
	e := httpx.NewEcho(log, reg, 1<<10)
	health.Register(e)
	run := func(ctx context.Context) error {
		ln, err := ep.Listen()
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			if err := httpx.Serve(gctx, ln, e); err != nil {
				return fmt.Errorf("relay: metrics: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			if err := db.MigrateUp(gctx, cfg.DSN, outbox.Migrations()); err != nil {
				return fmt.Errorf("relay: %w", err)
			}
			health.SetReady(true)
			return r.Run(gctx)
		})
		return g.Wait()
	}
	note := fmt.Sprintf("outbox of %s to %v", db.Redact(cfg.DSN), KafkaBrokers(env.cfg))
	addr := func() string { return "http://" + ep.Addr() + "/metrics" }
	return Component{Name: "relay", Addr: addr, Note: note, Run: run, Started: ep.Started(), Close: r.Close}, nil
}

func newRelayCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Publish the transactional outbox to Kafka",
		Long: `Publish the outbox table of a database (by default the monolith's) to Kafka,
in per-aggregate commit order, without skipping rows that commit out of
sequence order. Relays with the same --name share a lease: run several for
availability, and one publishes at a time. Published rows are deleted after
relay.retention. Metrics, /healthz and /readyz are served on --metrics-addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.RunOne(cmd, relayComponent)
		},
	}
	a.BindString(cmd, "dsn", "relay.dsn", "database holding the outbox (default: monolith.dsn)")
	a.BindString(cmd, "name", "relay.name", "relay group: relays with one name share a lease (default \"default\")")
	a.BindString(cmd, "brokers", "kafka.brokers", "Kafka bootstrap brokers, comma-separated (default: the embedded broker at broker.addr)")
	a.BindString(cmd, "metrics-addr", "relay.metrics_addr", "listen address for /metrics, /healthz, /readyz (default 127.0.0.1:9102)")
	return cmd
}
