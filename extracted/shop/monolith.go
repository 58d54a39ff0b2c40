package shop

import (
	"context"

	"github.com/spf13/cobra"

	invclient "github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/internal/cli"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"golang.org/x/sync/errgroup"
)

func init() {
	cli.RegisterCommand(newMonolithCmd)
	// The monolith starts after the broker and before the relay, which
	// publishes its outbox, and the proxy, whose legacy backend it is.
	cli.RegisterUp(20, "monolith", func(ctx context.Context, env *cli.UpEnv) ([]cli.Component, error) {
		c, err := monolithComponent(env)
		if err != nil {
			return nil, err
		}
		c.OnStarted = func() { env.LegacyURL = c.Addr() }
		return []cli.Component{c}, nil
	})
}

// monolithComponent builds the shop monolith with the phase watcher that
// switches its inventory calls and writes as the extraction moves.
func monolithComponent(env *cli.UpEnv) (cli.Component, error) {
	cfg := env.Config()
	log := env.Log().With("component", "monolith")
	shop, err := monolith.New(*Monolith.Of(cfg), log)
	if err != nil {
		return cli.Component{}, err
	}
	// After the inventory's ownership flip, orders reserve stock in the
	// extracted service, called directly rather than through the proxy:
	// an order holds the monolith's database while it reserves, and a
	// call that the proxy routed back to the monolith's own inventory
	// would wait for that same database.
	stock, err := invclient.New(invclient.Config{
		Resolve: func(context.Context) (string, error) { return inventoryServiceURL(env), nil },
		Log:     log,
	})
	if err != nil {
		return cli.Component{}, err
	}
	apply := func(ctx context.Context, c *adminclient.Client, ph int) error {
		if phase.Phase(ph) >= phase.Flip {
			// The service must own the writes before orders send it any.
			if err := cli.AwaitAck(ctx, c, "inventory", "inventory-service", func(p int) bool { return phase.Phase(p) >= phase.Flip }); err != nil {
				return err
			}
			shop.SetInventoryAPI(stock)
		} else {
			shop.SetInventoryAPI(nil)
		}
		return shop.RetireWrites("inventory", phase.Phase(ph) >= phase.Retire)
	}
	run := func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return shop.Run(gctx) })
		g.Go(func() error { return cli.WatchPhase(gctx, cfg, log, "inventory", "monolith", apply) })
		// The orders plan's monolith part: at retire its order writes are
		// switched off; the orders service owns them from the flip.
		g.Go(func() error {
			return cli.WatchPhase(gctx, cfg, log, "orders", "monolith", func(_ context.Context, _ *adminclient.Client, ph int) error {
				return shop.RetireWrites("orders", phase.Phase(ph) >= phase.Retire)
			})
		})
		return g.Wait()
	}
	addr := func() string { return "http://" + shop.Addr() }
	return cli.Component{Name: "monolith", Addr: addr, Run: run, Started: shop.Started(), Close: shop.Close}, nil
}

func newMonolithCmd(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monolith",
		Short: "Run the reference shop monolith on its own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.RunOne(cmd, monolithComponent)
		},
	}
	a.BindString(cmd, "addr", "monolith.addr", "listen address (default 127.0.0.1:9001)")
	a.BindString(cmd, "dsn", "monolith.dsn", "database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/monolith.db)")
	a.BindBool(cmd, "seed", "monolith.seed", "load the demo data into an empty database (default true)")
	return cmd
}
