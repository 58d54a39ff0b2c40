package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
)

// ExitDrift is the exit code of `strangler verify` when the tables differ.
const ExitDrift = 3

func init() { register(newVerifyCmd) }

func newVerifyCmd(a *App) *cobra.Command {
	var (
		adhoc   verify.Check
		columns []string
		limit   int
		output  string
		recheck time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify [CHECK...]",
		Short: "Compare a source table with its copy and report drift",
		Long: `Compare a source table (usually the monolith's) with a target table (usually
an extracted service's copy) through a mapping: row counts, then checksums by
key range, bisecting the ranges that differ down to the keys that do. Run the
checks named in verify.checks, or describe one with the flags below.

--column takes target=source[:transform[:type]], where transform is trim,
lower, upper, cents or prefix:<text> and type is text, int, decimal, bool,
time or json; repeat it per compared column.

On tables that take writes while verify runs (a live migration), rows in
flight through the sync differ for a moment. --recheck reads the differing
keys again after that long, up to five times, and counts a key that then
matches as settled, not drift.

Exit status: 0 in sync, 3 drift found, 2 bad invocation, 1 any other error.`,
		Example: `  strangler verify products
  strangler verify --source-table products --target-dsn postgres://svc@db/catalog \
      --target-table items --target-key sku --key-format 'SKU-%s' \
      --column name=title:trim --column price_cents=price:cents:int -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, not %q", output)}
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			var checks []verify.Check
			switch {
			case adhoc.Source.Table != "" && len(args) > 0:
				return usageError{errors.New("give check names or --source-table, not both")}
			case adhoc.Source.Table != "" || adhoc.Target.Table != "":
				for _, c := range columns {
					col, err := parseColumn(c)
					if err != nil {
						return usageError{err}
					}
					adhoc.Columns = append(adhoc.Columns, col)
				}
				if adhoc.Target.Table == "" {
					adhoc.Target.Table = adhoc.Source.Table
				}
				if adhoc.Name == "" {
					adhoc.Name = "adhoc"
				}
				one := verify.Config{Checks: []verify.Check{adhoc}}
				one.SetDefaults("")
				if err := one.Validate(); err != nil {
					return usageError{err}
				}
				checks = one.Checks
			case len(args) > 0:
				for _, name := range args {
					ch, ok := cfg.Verify.Check(name)
					if !ok {
						return usageError{fmt.Errorf("no verify check %q in verify.checks", name)}
					}
					checks = append(checks, ch)
				}
			default:
				return usageError{errors.New("name a check of verify.checks, or describe one with --source-table")}
			}
			var reports []*verify.Report
			drift := 0
			for _, ch := range checks {
				rep, err := runCheck(cmd, cfg, ch, verify.Options{RangeSize: ch.RangeSize, Limit: limit, Recheck: recheck})
				if err != nil {
					return fmt.Errorf("verify %s: %w", ch.Name, err)
				}
				if rep.Drift {
					drift++
				}
				recordVerify(cmd, a, cfg, ch.Name, rep, a.Logger(cfg))
				reports = append(reports, rep)
			}
			if output == "json" {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			} else {
				for i, rep := range reports {
					if i > 0 {
						fmt.Fprintln(a.Stdout)
					}
					if err := rep.WriteText(a.Stdout); err != nil {
						return err
					}
				}
			}
			if drift > 0 {
				return &ExitError{Code: ExitDrift, Err: fmt.Errorf("drift found in %d of %d checks", drift, len(checks))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&adhoc.Source.DSN, "source-dsn", "", "source database (default: monolith.dsn)")
	f.StringVar(&adhoc.Source.Table, "source-table", "", "source table")
	f.StringVar(&adhoc.Source.Key, "source-key", "", "source key column (default id)")
	f.StringVar(&adhoc.Target.DSN, "target-dsn", "", "target database (default: monolith.dsn)")
	f.StringVar(&adhoc.Target.Table, "target-table", "", "target table (default: the source table's name)")
	f.StringVar(&adhoc.Target.Key, "target-key", "", "target key column (default id)")
	f.StringArrayVar(&columns, "column", nil, "target=source[:transform[:type]]: a compared column (repeatable; default: every target column, same names)")
	f.StringVar(&adhoc.KeyFormat, "key-format", "", "turn a source key into a target key, %s for the source key (such as SKU-%s)")
	f.IntVar(&adhoc.RangeSize, "range-size", 0, "keys per checksummed range (default 1000)")
	f.IntVar(&limit, "limit", 100, "most keys listed per kind of difference")
	f.DurationVar(&recheck, "recheck", 0, "read differing keys again after this long, up to 5 times; keys that then match are settled (0: no recheck)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// parseColumn reads target=source[:transform[:type]]. A transform of the
// form prefix:<text> holds a colon of its own; a last field that names a type
// is the type.
func parseColumn(s string) (verify.Column, error) {
	target, rest, ok := strings.Cut(s, "=")
	if !ok || target == "" || rest == "" {
		return verify.Column{}, fmt.Errorf("--column %q: want target=source[:transform[:type]]", s)
	}
	segs := strings.Split(rest, ":")
	col := verify.Column{Target: target, Source: segs[0]}
	segs = segs[1:]
	if n := len(segs); n > 0 && isCompareType(segs[n-1]) && (n >= 2 || !isTransform(segs[n-1])) {
		col.Type = segs[n-1]
		segs = segs[:n-1]
	}
	col.Transform = strings.Join(segs, ":")
	if err := col.Validate(); err != nil {
		return verify.Column{}, fmt.Errorf("--column %q: %w", s, err)
	}
	return col, nil
}

func isCompareType(s string) bool {
	switch s {
	case "text", "int", "decimal", "bool", "time", "json":
		return true
	}
	return false
}

func isTransform(s string) bool {
	switch s {
	case "trim", "lower", "upper", "cents":
		return true
	}
	return strings.HasPrefix(s, "prefix:")
}

func runCheck(cmd *cobra.Command, cfg *config.Config, ch verify.Check, opt verify.Options) (*verify.Report, error) {
	ctx := cmd.Context()
	open := func(dsn, setting string) (string, func(), *verify.Side, error) {
		dsn, err := databaseOr(cfg, dsn, setting)
		if err != nil {
			return "", nil, nil, fmt.Errorf("verify %s: %w", ch.Name, err)
		}
		gdb, err := db.Open(ctx, dsn, db.Options{})
		if err != nil {
			return dsn, nil, nil, err
		}
		return dsn, func() { _ = db.Close(gdb) }, &verify.Side{DB: gdb}, nil
	}
	srcDSN, closeSrc, src, err := open(ch.Source.DSN, "--source-dsn or the check's source.dsn")
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	dstDSN, closeDst, dst, err := open(ch.Target.DSN, "--target-dsn or the check's target.dsn")
	if err != nil {
		return nil, err
	}
	defer closeDst()
	src.Table, src.Key = ch.Source.Table, ch.Source.Key
	dst.Table, dst.Key = ch.Target.Table, ch.Target.Key
	m := ch.Mapping()
	if build, ok := verifyRows[ch.Name]; ok {
		m.Row = build(src.DB)
	}
	rep, err := verify.Compare(ctx, *src, *dst, m, opt)
	if err != nil {
		return nil, err
	}
	rep.Source = verify.Describe(srcDSN, ch.Source.Table)
	rep.Target = verify.Describe(dstDSN, ch.Target.Table)
	return rep, nil
}
