// Command sqlexec runs one SQL statement on a database and prints the rows
// it changed, or, for a query (SELECT or WITH), the rows it returned. The
// database is a Strangler DSN (sqlite:PATH or postgres://...), or the name
// of one of the shop's databases as the strangler binary's config gives
// it (file, STRANGLER_* environment, defaults), whatever engine that is:
// "monolith", or "inventory" or "orders" for the extracted services' own.
// The guides use it to corrupt a row on purpose and show that verify finds
// it, and to show what a service's database holds after a crash; it has no
// other use.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/shop"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sqlexec monolith|inventory|orders|DSN STATEMENT")
		os.Exit(2)
	}
	if err := run(os.Stdout, os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "sqlexec:", err)
		os.Exit(1)
	}
}

// named are the shop's databases by name, from the effective config.
var named = map[string]func(*config.Config) string{
	"monolith":  func(cfg *config.Config) string { return shop.Monolith.Of(cfg).DSN },
	"inventory": func(cfg *config.Config) string { return shop.Services.Of(cfg).Inventory.DSN },
	"orders":    func(cfg *config.Config) string { return shop.Services.Of(cfg).Orders.DSN },
}

func run(w io.Writer, dsn, stmt string) error {
	if of, ok := named[dsn]; ok {
		cfg, err := config.Load(config.LoadOptions{Base: shop.Defaults})
		if err != nil {
			return err
		}
		dsn = of(cfg)
	}
	ctx := context.Background()
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		return err
	}
	defer db.Close(gdb)
	if isQuery(stmt) {
		rows, err := gdb.WithContext(ctx).Raw(stmt).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		return printRows(w, rows)
	}
	res := gdb.WithContext(ctx).Exec(stmt)
	if res.Error != nil {
		return res.Error
	}
	fmt.Fprintf(w, "%d rows changed\n", res.RowsAffected)
	return nil
}

// isQuery reports whether stmt returns rows: it starts with SELECT or WITH.
func isQuery(stmt string) bool {
	f := strings.Fields(stmt)
	return len(f) > 0 && (strings.EqualFold(f[0], "SELECT") || strings.EqualFold(f[0], "WITH"))
}

// printRows prints the column names and the rows, aligned, NULL as "NULL".
func printRows(w io.Writer, rows *sql.Rows) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = "NULL"
			if v.Valid {
				cells[i] = v.String
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
