package db_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestTogether runs lookups in Together and checks that each fn gets the
// rows, or the error, that it would get on its own: values of several
// types and NULLs, no rows, a failing query next to a good one, a fn that
// returns without querying, and a second query of a fn. On Postgres the
// first queries of the fns go in one round trip once the connection knows
// their columns.
func TestTogether(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := openWidgets(t, dsn)
		pg := db.DialectOf(gdb) == db.Postgres
		for _, name := range []string{"cog", "gear", "spring"} {
			if err := gdb.Exec("INSERT INTO widgets (name) VALUES (?)", name).Error; err != nil {
				t.Fatal(err)
			}
		}
		ph := func(i int) string {
			if pg {
				return fmt.Sprintf("$%d", i)
			}
			return "?"
		}
		// The lookups: each a query, its arguments, and the rows (or
		// error) it gives on its own.
		lookups := map[string]struct {
			query string
			args  []any
		}{
			"widgets":  {"SELECT id, name FROM widgets WHERE name <> " + ph(1) + " ORDER BY id", []any{"gear"}},
			"one":      {"SELECT id, name, colour FROM widgets WHERE name = " + ph(1), []any{"spring"}},
			"none":     {"SELECT id, name FROM widgets WHERE id < " + ph(1), []any{0}},
			"types":    {typesQuery(pg), []any{int64(42)}},
			"bad":      {"SELECT no_such_column FROM widgets WHERE id = " + ph(1), []any{1}},
			"no query": {},
		}
		alone := map[string]result{}
		for name, l := range lookups {
			if l.query != "" {
				alone[name] = lookup(ctx, gdb, l.query, l.args)
			}
		}
		if alone["bad"].err == "" || alone["types"].err != "" || len(alone["widgets"].rows) != 2 {
			t.Fatalf("the lookups on their own: %+v", alone)
		}
		for _, tc := range []struct {
			name string
			fns  []string
		}{
			{"two", []string{"widgets", "one"}},
			{"types and none", []string{"types", "none", "widgets"}},
			{"a failing query", []string{"bad", "one"}},
			{"a fn without a query", []string{"no query", "widgets"}},
			{"all", []string{"widgets", "one", "none", "types", "bad", "no query"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// Twice: the first round teaches the connection the
				// columns, the second can batch them.
				for round := range 2 {
					got := make([]result, len(tc.fns))
					fns := make([]func(context.Context), len(tc.fns))
					for i, name := range tc.fns {
						l := lookups[name]
						fns[i] = func(ctx context.Context) {
							if l.query != "" {
								got[i] = lookup(ctx, gdb, l.query, l.args)
							}
						}
					}
					db.Together(ctx, gdb, fns...)
					for i, name := range tc.fns {
						if !reflect.DeepEqual(got[i], alone[name]) {
							t.Errorf("round %d: %s in Together = %+v, on its own %+v", round, name, got[i], alone[name])
						}
					}
				}
			})
		}
		t.Run("a second query goes to the pool", func(t *testing.T) {
			var first, second result
			db.Together(ctx, gdb, func(ctx context.Context) {
				first = lookup(ctx, gdb, lookups["one"].query, lookups["one"].args)
				second = lookup(ctx, gdb, lookups["widgets"].query, lookups["widgets"].args)
			}, func(ctx context.Context) {})
			if !reflect.DeepEqual(first, alone["one"]) || !reflect.DeepEqual(second, alone["widgets"]) {
				t.Fatalf("Together gave %+v and %+v, want %+v and %+v", first, second, alone["one"], alone["widgets"])
			}
		})
		t.Run("a query on another pool runs there", func(t *testing.T) {
			other := openWidgets(t, otherDSN(t, pg))
			if err := other.Exec("INSERT INTO widgets (name) VALUES ('elsewhere')").Error; err != nil {
				t.Fatal(err)
			}
			var here, there result
			db.Together(ctx, gdb, func(ctx context.Context) {
				there = lookup(ctx, other, "SELECT name FROM widgets", nil)
				here = lookup(ctx, gdb, lookups["one"].query, lookups["one"].args)
			}, func(ctx context.Context) {})
			if want := (result{rows: [][]any{{"elsewhere"}}}); !reflect.DeepEqual(there, want) || !reflect.DeepEqual(here, alone["one"]) {
				t.Fatalf("Together gave %+v from the other pool and %+v from its own, want %+v and %+v", there, here, want, alone["one"])
			}
		})
		if !pg {
			return
		}
		t.Run("one round trip", func(t *testing.T) {
			one, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close(one) })
			for round := range 2 {
				before := db.GatheredBatches()
				var a, b result
				db.Together(ctx, one, func(ctx context.Context) {
					a = lookup(ctx, one, lookups["one"].query, lookups["one"].args)
				}, func(ctx context.Context) {
					b = lookup(ctx, one, lookups["widgets"].query, lookups["widgets"].args)
				})
				if !reflect.DeepEqual(a, alone["one"]) || !reflect.DeepEqual(b, alone["widgets"]) {
					t.Fatalf("round %d: Together gave %+v and %+v", round, a, b)
				}
				// The first round learns the columns one query at a time.
				// (The types lookup has columns, numeric and text[], that
				// read differently in a batch: it never goes in one.)
				if n, want := db.GatheredBatches()-before, int64(round); n != want {
					t.Fatalf("round %d: %d batches, want %d", round, n, want)
				}
			}
			// A query that fails in the batch, whose columns the
			// connection knows: each fn still gets what it would alone.
			const divide = "SELECT 10 / $1::bigint AS q"
			for _, d := range []int64{2, 0} {
				var a, b result
				db.Together(ctx, one, func(ctx context.Context) {
					a = lookup(ctx, one, divide, []any{d})
				}, func(ctx context.Context) {
					b = lookup(ctx, one, lookups["one"].query, lookups["one"].args)
				})
				wantA := lookup(ctx, one, divide, []any{d})
				if !reflect.DeepEqual(a, wantA) || !reflect.DeepEqual(b, alone["one"]) {
					t.Fatalf("10/%d: Together gave %+v and %+v, want %+v and %+v", d, a, b, wantA, alone["one"])
				}
				if d == 0 && a.err == "" {
					t.Fatalf("10/0 gave no error: %+v", a)
				}
			}
		})
	})
}

// typesQuery selects a value of each kind that the shop's lookups read,
// and NULLs.
func typesQuery(pg bool) string {
	if pg {
		return `SELECT $1::bigint AS n, 'text'::text AS t, true AS b, 2.5::float8 AS f,
    TIMESTAMPTZ '2026-01-02 03:04:05.123456+00' AS ts, '\x0102'::bytea AS raw, 12.50::numeric AS num,
    NULL::text AS absent, ARRAY['a', 'b'] AS arr`
	}
	return `SELECT ? AS n, 'text' AS t, 1 AS b, 2.5 AS f, '2026-01-02 03:04:05.123456' AS ts, x'0102' AS raw, 12.50 AS num, NULL AS absent`
}

// result is what a lookup read: its rows, each value as database/sql
// scans it into an any, or its error's text.
type result struct {
	rows [][]any
	err  string
}

func lookup(ctx context.Context, gdb *gorm.DB, query string, args []any) result {
	rows, err := db.QueryNative(ctx, gdb, query, args...)
	if err != nil {
		return result{err: normalizeErr(err)}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return result{err: err.Error()}
	}
	var out result
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return result{err: err.Error()}
		}
		out.rows = append(out.rows, vals)
	}
	if err := rows.Err(); err != nil {
		return result{err: normalizeErr(err)}
	}
	return out
}

// normalizeErr is the error's text up to Postgres's position detail, which
// the same error repeats.
func normalizeErr(err error) string {
	s, _, _ := strings.Cut(err.Error(), " (SQLSTATE")
	return s
}

// otherDSN is a second database of the dialect, for a second pool.
func otherDSN(t *testing.T, pg bool) string {
	if pg {
		return dbtest.PostgresDSN(t)
	}
	return dbtest.SQLiteDSN(t)
}
