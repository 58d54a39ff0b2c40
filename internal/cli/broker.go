package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/changefeed/broker"
	"github.com/stranglerkit/strangler/config"
)

func init() {
	register(newBrokerCmd)
	RegisterUp(10, "broker", func(ctx context.Context, env *UpEnv) ([]Component, error) {
		if len(env.cfg.Kafka.Brokers) > 0 {
			// kafka.brokers names a cluster: nothing to embed.
			return nil, nil
		}
		c, err := brokerComponent(env)
		if err != nil {
			return nil, err
		}
		return []Component{c}, nil
	})
}

// kafkaBrokers is where the change events go: kafka.brokers, or the embedded
// broker at broker.addr.
func KafkaBrokers(cfg *config.Config) []string {
	if len(cfg.Kafka.Brokers) > 0 {
		return cfg.Kafka.Brokers
	}
	return []string{cfg.Broker.Addr}
}

// brokerComponent builds the embedded broker. Once it listens, it records
// its address in the config, so that the relay and consumers built after it
// find it even when it listens on a free port.
func brokerComponent(env *UpEnv) (Component, error) {
	b, err := broker.New(env.cfg.Broker, env.log.With("component", "broker"))
	if err != nil {
		return Component{}, err
	}
	return Component{
		Name: "broker", Addr: func() string { return "kafka://" + b.Addr() }, Note: "data in " + env.cfg.Broker.Dir,
		Run: b.Run, Started: b.Started(), Close: b.Close,
		OnStarted: func() { env.cfg.Broker.Addr = b.Addr() },
	}, nil
}

func newBrokerCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker on its own",
		Long: `Run the embedded Kafka-protocol broker (a single-node kfake cluster) that
'strangler up' starts on 127.0.0.1:9092. It keeps its log under --dir, so
events survive a restart, and any Kafka client can use it (kafka-go, kcat,
librdkafka, the Java client). In production set kafka.brokers to a real
cluster instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.RunOne(cmd, brokerComponent)
		},
	}
	a.BindString(cmd, "addr", "broker.addr", "listen address (default 127.0.0.1:9092)")
	a.BindString(cmd, "dir", "broker.dir", "data directory (default <data-dir>/broker)")
	return cmd
}
