package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
)

// migrationTarget is a database and the migration sets that belong in it.
type migrationTarget func(cfg *config.Config) (dsn string, sets []db.Migrations)

// migrationTargets maps a target name to its database and sets, as
// programs register them: the shop's monolith database holds its modules'
// sets, and each extracted service adds its own.
var migrationTargets = map[string]migrationTarget{}

// RegisterMigrations adds sets to a target, creating it if new, so that a
// component whose tables live in another's database migrates with it. dsn
// returns the target's configured database.
func RegisterMigrations(target string, dsn func(cfg *config.Config) string, sets func() []db.Migrations) {
	prev := migrationTargets[target]
	migrationTargets[target] = func(cfg *config.Config) (string, []db.Migrations) {
		if prev == nil {
			return dsn(cfg), sets()
		}
		d, s := prev(cfg)
		return d, append(s, sets()...)
	}
}

func init() { register(newMigrateCmd) }

func newMigrateCmd(a *App) *cobra.Command {
	var (
		dsn    string
		steps  int
		all    bool
		output string
	)
	targetOf := func(args []string) (string, error) {
		if len(migrationTargets) == 0 {
			return "", usageError{errors.New("no migration targets: this program registers none")}
		}
		name := program.MigrateTarget
		if len(args) == 1 {
			name = args[0]
		} else if name == "" && len(migrationTargets) == 1 {
			name = targetNames()[0]
		}
		if _, ok := migrationTargets[name]; !ok {
			return "", usageError{fmt.Errorf("unknown migration target %q; known: %s", name, strings.Join(targetNames(), ", "))}
		}
		return name, nil
	}
	resolve := func(cmd *cobra.Command, args []string) (string, []db.Migrations, error) {
		name, err := targetOf(args)
		if err != nil {
			return "", nil, err
		}
		cfg, err := a.Config(cmd)
		if err != nil {
			return "", nil, err
		}
		d, sets := migrationTargets[name](cfg)
		if dsn != "" {
			if _, err := db.ParseDSN(dsn); err != nil {
				return "", nil, usageError{fmt.Errorf("--dsn: %w", err)}
			}
			d = dsn
		}
		return d, sets, nil
	}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or show database migrations",
		Long: `Apply, roll back or show the golang-migrate sets of a target database.
TARGET is one that the program registers: in the shop, monolith (the
default) or an extracted service. Each module's set
has its own version table, schema_migrations_<set>.`,
	}
	cmd.PersistentFlags().StringVar(&dsn, "dsn", "", "database to migrate (default: the target's configured DSN)")

	up := &cobra.Command{
		Use:   "up [TARGET]",
		Short: "Apply every pending migration",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, sets, err := resolve(cmd, args)
			if err != nil {
				return err
			}
			if err := db.MigrateUp(cmd.Context(), d, sets...); err != nil {
				return err
			}
			return printStatus(a, cmd, d, sets, output)
		},
	}
	down := &cobra.Command{
		Use:   "down [TARGET]",
		Short: "Roll back migrations: --steps N of each set, or --all",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (steps > 0) == all {
				return usageError{fmt.Errorf("give either --steps N or --all")}
			}
			d, sets, err := resolve(cmd, args)
			if err != nil {
				return err
			}
			n := steps
			if all {
				n = 0
			}
			if err := db.MigrateDown(cmd.Context(), d, n, sets...); err != nil {
				return err
			}
			return printStatus(a, cmd, d, sets, output)
		},
	}
	down.Flags().IntVar(&steps, "steps", 0, "how many migrations of each set to roll back")
	down.Flags().BoolVar(&all, "all", false, "roll back every migration (drops the tables)")
	status := &cobra.Command{
		Use:   "status [TARGET]",
		Short: "Show each set's applied and latest version",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, sets, err := resolve(cmd, args)
			if err != nil {
				return err
			}
			return printStatus(a, cmd, d, sets, output)
		},
	}
	for _, c := range []*cobra.Command{up, down, status} {
		c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	}
	cmd.AddCommand(up, down, status)
	return cmd
}

func targetNames() []string { return sortedKeys(migrationTargets) }

func printStatus(a *App, cmd *cobra.Command, dsn string, sets []db.Migrations, output string) error {
	st, err := db.MigrateStatus(cmd.Context(), dsn, sets...)
	if err != nil {
		return err
	}
	return writeOutput(a, output, map[string]any{"database": db.Redact(dsn), "sets": st}, func() error {
		fmt.Fprintf(a.Stdout, "database: %s\n", db.Redact(dsn))
		tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SET\tTABLE\tVERSION\tLATEST\tPENDING\tDIRTY")
		for _, s := range st {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%t\n", s.Name, s.Table, s.Version, s.Latest, s.Pending, s.Dirty)
		}
		return tw.Flush()
	})
}
