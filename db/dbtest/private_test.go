package dbtest_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestPrivatePostgres starts a private cluster, writes a row, and checks
// that the row outlives a fast restart and a crash (immediate stop), and
// that the cluster refuses connections while it is stopped.
func TestPrivatePostgres(t *testing.T) {
	pg := dbtest.PrivatePostgres(t)
	conn, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetMaxIdleConns(0) // each query dials, so none rides a connection the stop cut
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')`); err != nil {
		t.Fatal(err)
	}
	read := func(when string) {
		t.Helper()
		var v string
		if err := conn.QueryRowContext(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "before" {
			t.Fatalf("%s: read %q, %v; want %q", when, v, err, "before")
		}
	}
	for _, tc := range []struct {
		name string
		stop func()
	}{
		{"fast stop", pg.Stop},
		{"immediate stop", pg.Kill},
	} {
		tc.stop()
		if err := conn.PingContext(ctx); err == nil {
			t.Fatalf("after the %s, the cluster still answers", tc.name)
		}
		pg.Start()
		read("after the " + tc.name + " and a start")
	}
	pg.Restart()
	read("after a restart")
}
