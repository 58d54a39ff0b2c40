// Command sqlexec runs one SQL statement on a database given by a Strangler
// DSN (sqlite:PATH or postgres://...) and prints the rows it changed. The
// extraction guide uses it to corrupt a row on purpose and show that verify
// finds it; it has no other use.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/stranglerkit/strangler/db"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sqlexec DSN STATEMENT")
		os.Exit(2)
	}
	ctx := context.Background()
	gdb, err := db.Open(ctx, os.Args[1], db.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlexec:", err)
		os.Exit(1)
	}
	defer db.Close(gdb)
	res := gdb.WithContext(ctx).Exec(os.Args[2])
	if res.Error != nil {
		fmt.Fprintln(os.Stderr, "sqlexec:", res.Error)
		os.Exit(1)
	}
	fmt.Printf("%d rows changed\n", res.RowsAffected)
}
