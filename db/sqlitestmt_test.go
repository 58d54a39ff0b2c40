package db

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSQLiteStatementCache runs queries through Open's SQLite pool, on one
// connection, and checks that a repeated query reuses its prepared
// statement, that the same query nested in its own open rows still runs,
// that a text of several statements runs them all, and that an error
// leaves the cached statement usable.
func TestSQLiteStatementCache(t *testing.T) {
	ctx := context.Background()
	gdb, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "cache.db"), Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer Close(gdb)
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cached := func() map[string]*cachedStmt {
		var m map[string]*cachedStmt
		if err := conn.Raw(func(dc any) error { m = dc.(*cachingConn).stmts; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	const pick = "SELECT n FROM t WHERE n >= ? ORDER BY n"
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"several statements in one text all run", func(t *testing.T) {
			if _, err := conn.ExecContext(ctx, "CREATE TABLE t (n INTEGER NOT NULL UNIQUE); INSERT INTO t VALUES (1), (2); INSERT INTO t VALUES (3)"); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 3 {
				t.Fatalf("rows %d (%v), want 3", n, err)
			}
		}},
		{"a repeated query reuses its statement", func(t *testing.T) {
			var first *cachedStmt
			for i := range 3 {
				var n int
				if err := conn.QueryRowContext(ctx, pick, 2).Scan(&n); err != nil || n != 2 {
					t.Fatalf("run %d: %d (%v), want 2", i, n, err)
				}
				cs := cached()[pick]
				if cs == nil || cs.busy || first != nil && cs != first {
					t.Fatalf("run %d: cached %+v, first %p", i, cs, first)
				}
				first = cs
			}
		}},
		{"the same query inside its own open rows", func(t *testing.T) {
			rows, err := conn.QueryContext(ctx, pick, 1)
			if err != nil {
				t.Fatal(err)
			}
			var outer []int
			for rows.Next() {
				var n, inner int
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				if err := conn.QueryRowContext(ctx, pick, n).Scan(&inner); err != nil || inner != n {
					t.Fatalf("nested query for %d: %d (%v)", n, inner, err)
				}
				outer = append(outer, n)
			}
			if err := rows.Close(); err != nil || len(outer) != 3 {
				t.Fatalf("outer rows %v (%v), want 1 2 3", outer, err)
			}
		}},
		{"an error leaves the statement usable", func(t *testing.T) {
			const ins = "INSERT INTO t (n) VALUES (?) RETURNING n"
			for _, c := range []struct {
				n  int
				ok bool
			}{{4, true}, {4, false}, {5, true}} {
				var got int
				err := conn.QueryRowContext(ctx, ins, c.n).Scan(&got)
				if (err == nil) != c.ok || c.ok && got != c.n {
					t.Fatalf("insert %d: %d, %v; want ok %v", c.n, got, err, c.ok)
				}
			}
			if cached()[ins] == nil {
				t.Fatal("the insert's statement is not cached")
			}
		}},
		{"a repeated write reuses its statement, also after an error", func(t *testing.T) {
			const ins = "INSERT INTO t (n) VALUES (?)"
			var first *cachedStmt
			for _, c := range []struct {
				n  int
				ok bool
			}{{6, true}, {6, false}, {7, true}} {
				if _, err := conn.ExecContext(ctx, ins, c.n); (err == nil) != c.ok {
					t.Fatalf("insert %d: %v; want ok %v", c.n, err, c.ok)
				}
				cs := cached()[ins]
				if cs == nil || first != nil && cs != first {
					t.Fatalf("insert %d: cached %+v, first %p", c.n, cs, first)
				}
				first = cs
			}
			var n int
			if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE n IN (6, 7)").Scan(&n); err != nil || n != 2 {
				t.Fatalf("rows 6 and 7: %d (%v), want 2", n, err)
			}
		}},
		{"a write in a transaction commits", func(t *testing.T) {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{8, 9} {
				if _, err := tx.ExecContext(ctx, "UPDATE t SET n = n + 100 WHERE n = ?", n); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("commit after cached writes: %v", err)
			}
		}},
		{"writes that return rows, and other texts, are not cached", func(t *testing.T) {
			for _, q := range []string{"UPDATE t SET n = n WHERE n = 1 RETURNING n", "SELECT 1", "CREATE TABLE u (x INTEGER)"} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if cached()[q] != nil {
					t.Errorf("%s is cached", q)
				}
			}
		}},
	} {
		t.Run(tc.name, tc.run)
	}
}
