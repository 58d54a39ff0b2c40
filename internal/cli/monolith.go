package cli

import (
	"context"
	"github.com/stranglerkit/strangler/extracted/shop"

	"github.com/spf13/cobra"

	invclient "github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"golang.org/x/sync/errgroup"
)

func init() {
	register(newMonolithCmd)
	registerUp(20, func(ctx context.Context, env *upEnv) ([]component, error) {
		c, err := monolithComponent(env)
		if err != nil {
			return nil, err
		}
		c.onStarted = func() { env.monolithURL = c.addr() }
		return []component{c}, nil
	})
}

func monolithComponent(env *upEnv) (component, error) {
	log := env.log.With("component", "monolith")
	shop, err := monolith.New((*shop.Monolith.Of(env.cfg)), log)
	if err != nil {
		return component{}, err
	}
	// After the inventory's ownership flip, orders reserve stock in the
	// extracted service, called directly rather than through the proxy:
	// an order holds the monolith's database while it reserves, and a
	// call that the proxy routed back to the monolith's own inventory
	// would wait for that same database.
	stock, err := invclient.New(invclient.Config{
		Resolve: func(context.Context) (string, error) { return env.inventoryServiceURL(), nil },
		Log:     log,
	})
	if err != nil {
		return component{}, err
	}
	apply := func(ctx context.Context, c *adminclient.Client, ph int) error {
		if phase.Phase(ph) >= phase.Flip {
			// The service must own the writes before orders send it any.
			if err := awaitAck(ctx, c, "inventory", "inventory-service", func(p int) bool { return phase.Phase(p) >= phase.Flip }); err != nil {
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
		g.Go(func() error { return watchPhase(gctx, env.cfg, log, "inventory", "monolith", apply) })
		return g.Wait()
	}
	addr := func() string { return "http://" + shop.Addr() }
	return component{name: "monolith", addr: addr, run: run, started: shop.Started(), close: shop.Close}, nil
}

func newMonolithCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monolith",
		Short: "Run the reference shop monolith on its own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runOne(cmd, monolithComponent)
		},
	}
	a.BindString(cmd, "addr", "monolith.addr", "listen address (default 127.0.0.1:9001)")
	a.BindString(cmd, "dsn", "monolith.dsn", "database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/monolith.db)")
	a.BindBool(cmd, "seed", "monolith.seed", "load the demo data into an empty database (default true)")
	return cmd
}
