package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
)

// projectionSet is one program's read models in one database, as
// RegisterProjections adds them.
type projectionSet struct {
	dsn   func(cfg *config.Config) string
	build func(gdb *gorm.DB) (*eventsource.Runner, error)
}

// projectionSets maps a set's name (such as "orders") to it.
var projectionSets = map[string]projectionSet{}

func init() { register(newProjectionsCmd) }

func newProjectionsCmd(a *App) *cobra.Command {
	var (
		dsn    string
		only   string
		output string
	)
	// open loads the config, opens the set's database and builds its
	// runner; done closes both.
	open := func(cmd *cobra.Command, name string) (*eventsource.Runner, func(), error) {
		set, ok := projectionSets[name]
		if !ok {
			if len(projectionSets) == 0 {
				return nil, nil, usageError{errors.New("no projections: this program registers none")}
			}
			return nil, nil, usageError{fmt.Errorf("unknown projections %q; known: %s", name, strings.Join(sortedKeys(projectionSets), ", "))}
		}
		cfg, err := a.Config(cmd)
		if err != nil {
			return nil, nil, err
		}
		d := set.dsn(cfg)
		if dsn != "" {
			d = dsn
		}
		if _, err := db.ParseDSN(d); err != nil {
			return nil, nil, usageError{fmt.Errorf("--dsn: %w", err)}
		}
		gdb, err := db.Open(cmd.Context(), d, db.Options{Logger: a.Logger(cfg)})
		if err != nil {
			return nil, nil, err
		}
		r, err := set.build(gdb)
		if err != nil {
			_ = db.Close(gdb)
			return nil, nil, fmt.Errorf("projections %s: %w", name, err)
		}
		return r, func() { _ = r.Close(); _ = db.Close(gdb) }, nil
	}
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Show or rebuild the read models projected from an event store",
		Long: `Show or rebuild the read models (CQRS projections) of an event store.
NAME is a set of projections that the program registers, such as orders in
the shop; each has its own tables and a checkpoint in the store's database.`,
	}
	cmd.PersistentFlags().StringVar(&dsn, "dsn", "", "the event store's database (default: the set's configured DSN)")
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "Show each projection's checkpoint and lag",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer done()
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			return printProjections(a, st, output)
		},
	}
	rebuild := &cobra.Command{
		Use:   "rebuild NAME",
		Short: "Empty the projections' tables and replay the store from position 0",
		Long: `Empty each projection's tables and apply every event of the store again,
from position 0, in batches, each with the checkpoint's update. The result
is what the projection would hold had it always run. Readers see the tables
fill up again while it runs; a service projecting at the same time is safe.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, done, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer done()
			names := []string{only}
			if only == "" {
				names = names[:0]
				for _, p := range r.Projections() {
					names = append(names, p.Name())
				}
			}
			if err := rebuildAll(cmd.Context(), r, names); err != nil {
				return err
			}
			if output != "json" {
				fmt.Fprintf(a.Stdout, "rebuilt from position 0: %s\n", strings.Join(names, ", "))
			}
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			return printProjections(a, st, output)
		},
	}
	rebuild.Flags().StringVar(&only, "projection", "", "rebuild this projection of the set only")
	for _, c := range []*cobra.Command{list, rebuild} {
		c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	}
	cmd.AddCommand(list, rebuild)
	return cmd
}

func rebuildAll(ctx context.Context, r *eventsource.Runner, names []string) error {
	for _, n := range names {
		if err := r.Rebuild(ctx, n); err != nil {
			if errors.Is(err, eventsource.ErrUnknownProjection) {
				return usageError{err}
			}
			return fmt.Errorf("rebuild %s: %w", n, err)
		}
	}
	return nil
}

func printProjections(a *App, st []eventsource.Status, output string) error {
	return writeOutput(a, output, map[string]any{"projections": st}, func() error {
		tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTION\tPOSITION\tHEAD\tLAG")
		for _, s := range st {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", s.Name, s.Position, s.Head, s.LagEvents)
		}
		return tw.Flush()
	})
}
