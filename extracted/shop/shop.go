package shop

import (
	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/extracted"
	"github.com/stranglerkit/strangler/internal/cli"
	"github.com/stranglerkit/strangler/monolith"
)

func init() {
	cli.SetProgram(cli.Program{
		Defaults: Defaults,
		Resolve:  Resolve,
		// up's proxy starts on the shop's table, with inventory's reads
		// and writes ready to move to the extracted service.
		UpRoutes: extracted.Routes,
		// The relay, backfill and verify work on the monolith's database
		// unless told otherwise.
		LegacyDSN:     monolithDSN,
		MigrateTarget: "monolith",
	})
	// The monolith's database holds its modules' sets.
	cli.RegisterMigrations("monolith", monolithDSN, monolith.Migrations)
	cli.Extend("up", func(a *cli.App, cmd *cobra.Command) {
		a.BindBool(cmd, "seed", "monolith.seed", "load the demo data into an empty database (default true)")
	})
}

// monolithDSN is the monolith's database, monolith.dsn.
func monolithDSN(cfg *config.Config) string { return Monolith.Of(cfg).DSN }
