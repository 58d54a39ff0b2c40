package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
)

func init() { register(newBackfillCmd) }

func newBackfillCmd(a *App) *cobra.Command {
	var (
		adhoc   backfill.Job
		columns []string
		renames []string
		restart bool
		output  string
	)
	cmd := &cobra.Command{
		Use:   "backfill [JOB...]",
		Short: "Snapshot existing rows into change events",
		Long: `Write a snapshot event into the outbox for every existing row of a table, so
that a new service gets its initial copy through the stream it then follows.
Run the jobs named in backfill.jobs, or describe one with --table and the
flags below. It works in chunks with per-row watermarks: a row changed while
its chunk is in flight keeps its live event and loses its snapshot copy. A
job resumes where an interrupted run stopped; --restart starts it over.`,
		Example: `  strangler backfill products
  strangler backfill --name products-v1 --table products --key id \
      --columns id,title,price_cents --rename title=name --aggregate-type product`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, not %q", output)}
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			var jobs []backfill.Job
			switch {
			case adhoc.Table != "" && len(args) > 0:
				return usageError{fmt.Errorf("give job names or --table, not both")}
			case adhoc.Table != "":
				adhoc.Columns = columns
				if len(renames) > 0 {
					adhoc.Rename = map[string]string{}
					for _, r := range renames {
						from, to, ok := strings.Cut(r, "=")
						if !ok || from == "" || to == "" {
							return usageError{fmt.Errorf("--rename %q: want column=field", r)}
						}
						adhoc.Rename[from] = to
					}
				}
				if adhoc.Name == "" {
					adhoc.Name = strings.ReplaceAll(adhoc.Table, ".", "_")
				}
				adhoc.SetDefaults()
				if err := adhoc.Validate(); err != nil {
					return usageError{err}
				}
				jobs = append(jobs, adhoc)
			case len(args) > 0:
				for _, name := range args {
					j, ok := cfg.Backfill.Job(name)
					if !ok {
						return usageError{fmt.Errorf("no backfill job %q in backfill.jobs", name)}
					}
					jobs = append(jobs, j)
				}
			default:
				return usageError{fmt.Errorf("name a job of backfill.jobs, or describe one with --table")}
			}
			log := a.Logger(cfg)
			var results []backfill.Result
			for _, j := range jobs {
				res, err := runBackfill(cmd, cfg, j, restart, log)
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			if output == "json" {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(results)
			}
			tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tTABLE\tROWS\tEVENTS\tDROPPED\tCHUNKS\tLAST KEY\tSTATE")
			for _, r := range results {
				state := "done"
				if r.Resumed {
					state = "done (resumed)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Job, r.Table, r.Rows, r.Events, r.Dropped, r.Chunks, r.LastKey, state)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&adhoc.Name, "name", "", "job name, under which its progress is kept (default: the table's)")
	f.StringVar(&adhoc.DSN, "dsn", "", "database holding the table and the outbox (default: monolith.dsn)")
	f.StringVar(&adhoc.Table, "table", "", "table to snapshot")
	f.StringVar(&adhoc.Key, "key", "", "key column: chunk order and aggregate id (default id)")
	f.StringSliceVar(&columns, "columns", nil, "columns in the payload, comma-separated (default all)")
	f.StringArrayVar(&renames, "rename", nil, "column=field: name a column differently in the payload (repeatable)")
	f.StringVar(&adhoc.AggregateType, "aggregate-type", "", "aggregate type, which selects the topic (default: the table's name)")
	f.StringVar(&adhoc.EventType, "event-type", "", "event type (default <aggregate-type>.snapshot)")
	f.IntVar(&adhoc.ChunkSize, "chunk-size", 0, "rows per chunk (default 1000)")
	f.BoolVar(&restart, "restart", false, "start over from the first row, even if the job finished")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runBackfill(cmd *cobra.Command, cfg *config.Config, j backfill.Job, restart bool, log *slog.Logger) (backfill.Result, error) {
	dsn, err := databaseOr(cfg, j.DSN, "--dsn or the job's dsn")
	if err != nil {
		return backfill.Result{}, fmt.Errorf("backfill %s: %w", j.Name, err)
	}
	ctx := cmd.Context()
	if err := db.MigrateUp(ctx, dsn, outbox.Migrations()); err != nil {
		return backfill.Result{}, err
	}
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		return backfill.Result{}, err
	}
	defer db.Close(gdb)
	log.Info("backfill", "job", j.Name, "table", j.Table, "database", db.Redact(dsn))
	opt := backfill.Options{DB: gdb, Restart: restart, Logger: log}
	if build, ok := backfillMaps[j.Name]; ok {
		opt.Map = build(gdb)
	}
	return backfill.Run(ctx, j, opt)
}
