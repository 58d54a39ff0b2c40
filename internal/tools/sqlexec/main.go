// Command sqlexec runs one SQL statement on a database and prints the rows
// it changed. The database is a Strangler DSN (sqlite:PATH or
// postgres://...), or "monolith" for the monolith's database as the
// strangler binary's config gives it (file, STRANGLER_* environment,
// defaults), whatever engine that is. The extraction guide uses it to
// corrupt a row on purpose and show that verify finds it; it has no other
// use.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/shop"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sqlexec monolith|DSN STATEMENT")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "sqlexec:", err)
		os.Exit(1)
	}
}

func run(dsn, stmt string) error {
	if dsn == "monolith" {
		cfg, err := config.Load(config.LoadOptions{Base: shop.Defaults})
		if err != nil {
			return err
		}
		dsn = shop.Monolith.Of(cfg).DSN
	}
	ctx := context.Background()
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		return err
	}
	defer db.Close(gdb)
	res := gdb.WithContext(ctx).Exec(stmt)
	if res.Error != nil {
		return res.Error
	}
	fmt.Printf("%d rows changed\n", res.RowsAffected)
	return nil
}
