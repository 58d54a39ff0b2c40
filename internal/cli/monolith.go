package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/monolith"
)

func init() {
	register(newMonolithCmd)
	registerUp(20, func(ctx context.Context, env *upEnv) ([]component, error) {
		c, err := monolithComponent(env)
		if err != nil {
			return nil, err
		}
		env.monolithURL = c.addr
		return []component{c}, nil
	})
}

func monolithComponent(env *upEnv) (component, error) {
	shop, err := monolith.New(env.cfg.Monolith, env.log.With("component", "monolith"))
	if err != nil {
		return component{}, err
	}
	return component{name: "monolith", addr: "http://" + shop.Addr(), run: shop.Run}, nil
}

func newMonolithCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monolith",
		Short: "Run the reference shop monolith on its own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			c, err := monolithComponent(&upEnv{cfg: cfg, log: a.Logger(cfg)})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "monolith  %s\n", c.addr)
			return runComponents(cmd.Context(), a.Logger(cfg), []component{c})
		},
	}
	a.BindString(cmd, "addr", "monolith.addr", "listen address (default 127.0.0.1:9001)")
	a.BindString(cmd, "dsn", "monolith.dsn", "database: sqlite:PATH or postgres://URL (default sqlite:<data-dir>/monolith.db)")
	a.BindBool(cmd, "seed", "monolith.seed", "load the demo data into an empty database (default true)")
	return cmd
}
