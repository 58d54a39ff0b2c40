package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestBatch queues rows in a transaction's batches and checks that they are
// written in one flush per batch just before the commit, in the order
// added, and not at all when the transaction rolls back or has none.
func TestBatch(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := openWidgets(t, dsn)
		var flushes [][]string
		names := &db.Batch[string]{Flush: func(ctx context.Context, rows []string) error {
			flushes = append(flushes, rows)
			for _, r := range rows {
				if r == "bad" {
					return errors.New("a bad row")
				}
				if err := db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES (?)", r).Error; err != nil {
					return err
				}
			}
			return nil
		}}
		// follow queues a name in names for each row it flushes: a flush
		// that queues rows in another batch, which the commit writes too.
		follow := &db.Batch[string]{Flush: func(ctx context.Context, rows []string) error {
			for _, r := range rows {
				if err := names.Add(ctx, "after-"+r); err != nil {
					return err
				}
			}
			return nil
		}}
		stored := func(t *testing.T) []string {
			var out []string
			if err := gdb.Raw("SELECT name FROM widgets ORDER BY id").Scan(&out).Error; err != nil {
				t.Fatal(err)
			}
			if err := gdb.Exec("DELETE FROM widgets").Error; err != nil {
				t.Fatal(err)
			}
			return out
		}
		boom := errors.New("boom")
		for _, tc := range []struct {
			name        string
			fn          func(ctx context.Context) error
			wantErr     error
			wantFlushes int
			want        []string
		}{
			{name: "commit writes in one flush, in order", fn: func(ctx context.Context) error {
				if err := names.Add(ctx, "a", "b"); err != nil {
					return err
				}
				var seen int64
				if err := db.Conn(ctx, gdb).Raw("SELECT COUNT(*) FROM widgets").Scan(&seen).Error; err != nil || seen != 0 {
					return fmt.Errorf("before the commit the table has %d rows (%v), want 0", seen, err)
				}
				return db.Transact(ctx, gdb, func(ctx context.Context) error { return names.Add(ctx, "c") })
			}, wantFlushes: 1, want: []string{"a", "b", "c"}},
			{name: "rollback writes nothing", fn: func(ctx context.Context) error {
				if err := names.Add(ctx, "x"); err != nil {
					return err
				}
				return boom
			}, wantErr: boom},
			{name: "a failed flush rolls back", fn: func(ctx context.Context) error {
				if err := db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES ('direct')").Error; err != nil {
					return err
				}
				return names.Add(ctx, "ok", "bad")
			}, wantFlushes: 1},
			{name: "a flush may queue more", fn: func(ctx context.Context) error {
				// names flushes first, then follow queues in names again.
				if err := names.Add(ctx, "n"); err != nil {
					return err
				}
				return follow.Add(ctx, "f")
			}, wantFlushes: 2, want: []string{"n", "after-f"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				flushes = nil
				err := db.Transact(ctx, gdb, tc.fn)
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && (err == nil) != (tc.want != nil) {
					t.Fatalf("Transact = %v", err)
				}
				if len(flushes) != tc.wantFlushes {
					t.Errorf("flushes %q, want %d", flushes, tc.wantFlushes)
				}
				if got := stored(t); strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("stored %q, want %q", got, tc.want)
				}
			})
		}
		if err := names.Add(ctx, "outside"); !errors.Is(err, db.ErrNoTransaction) {
			t.Errorf("Add outside a transaction = %v, want ErrNoTransaction", err)
		}
	})
}

// TestWriteInserts writes multi-row INSERTs, alone and as queued by
// batches with Values, and checks the rows, the statements they took (one
// for all of them on Postgres, one per INSERT on SQLite, more past the
// bound of parameters), and that a failed row writes none of the others.
func TestWriteInserts(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := openWidgets(t, dsn)
		stmts := dbtest.CountStatements(t, gdb)
		pg := db.DialectOf(gdb) == db.Postgres
		widget := func(names ...string) db.Insert {
			in := db.Insert{Table: "widgets", Columns: []string{"name", "colour"}}
			for _, n := range names {
				in.Rows = append(in.Rows, []any{n, "blue"})
			}
			return in
		}
		many := make([]string, 20000) // 40,000 parameters: past the bound
		for i := range many {
			many[i] = fmt.Sprintf("w%05d", i)
		}
		coloured := &db.Batch[string]{Table: "widgets", Columns: []string{"name", "colour"},
			Values: func(n string) []any { return []any{n, "green"} }}
		plain := &db.Batch[string]{Table: "widgets", Columns: []string{"name"},
			Values: func(n string) []any { return []any{n} }}
		if err := gdb.Exec("CREATE TABLE gadgets (widget_id BIGINT NOT NULL REFERENCES widgets (id), name TEXT NOT NULL)").Error; err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name      string
			fn        func(ctx context.Context) error
			wantErr   bool
			want      []string // name/colour, by id
			wantStmts int      // on SQLite
			pgStmts   int      // on Postgres, which joins the tables' INSERTs
			gadgets   int
		}{
			{name: "two inserts into one table", fn: func(ctx context.Context) error {
				return db.WriteInserts(db.Conn(ctx, gdb), widget("a", "b"), widget("c"))
			}, want: []string{"a/blue", "b/blue", "c/blue"}, wantStmts: 1, pgStmts: 1},
			{name: "two tables, the second referring to the first", fn: func(ctx context.Context) error {
				return db.WriteInserts(db.Conn(ctx, gdb),
					db.Insert{Table: "widgets", Columns: []string{"id", "name"}, Rows: [][]any{{1000, "parent"}}},
					db.Insert{Table: "gadgets", Columns: []string{"widget_id", "name"}, Rows: [][]any{{1000, "child"}}})
			}, want: []string{"parent/red"}, wantStmts: 2, pgStmts: 1, gadgets: 1},
			{name: "batches with values, in the order queued", fn: func(ctx context.Context) error {
				if err := plain.Add(ctx, "p1"); err != nil {
					return err
				}
				if err := coloured.Add(ctx, "g1", "g2"); err != nil {
					return err
				}
				return plain.Add(ctx, "p2")
			}, want: []string{"p1/red", "p2/red", "g1/green", "g2/green"}, wantStmts: 2, pgStmts: 2},
			{name: "past the bound of parameters", fn: func(ctx context.Context) error {
				return db.WriteInserts(db.Conn(ctx, gdb), widget(many...), widget("z"))
			}, wantStmts: 2, pgStmts: 2},
			{name: "a failed row writes none", fn: func(ctx context.Context) error {
				return db.WriteInserts(db.Conn(ctx, gdb), widget("d"), widget("e", "d"))
			}, wantErr: true, wantStmts: 1, pgStmts: 1},
			{name: "a row with too few values", fn: func(ctx context.Context) error {
				return db.WriteInserts(db.Conn(ctx, gdb), db.Insert{Table: "widgets", Columns: []string{"name", "colour"}, Rows: [][]any{{"f"}}})
			}, wantErr: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				stmts.Store(0)
				err := db.Transact(ctx, gdb, tc.fn)
				if (err != nil) != tc.wantErr {
					t.Fatalf("Transact = %v, want error %v", err, tc.wantErr)
				}
				want := tc.wantStmts
				if pg {
					want = tc.pgStmts
				}
				if n := stmts.Load(); n != int64(want) {
					t.Errorf("%d statements, want %d", n, want)
				}
				var got []string
				if err := gdb.Raw("SELECT name || '/' || colour FROM widgets ORDER BY id").Scan(&got).Error; err != nil {
					t.Fatal(err)
				}
				var gadgets []string
				if err := gdb.Raw("SELECT name FROM gadgets").Scan(&gadgets).Error; err != nil {
					t.Fatal(err)
				}
				if len(gadgets) != tc.gadgets {
					t.Errorf("gadgets %q, want %d", gadgets, tc.gadgets)
				}
				if err := gdb.Exec("DELETE FROM gadgets").Error; err != nil {
					t.Fatal(err)
				}
				if err := gdb.Exec("DELETE FROM widgets").Error; err != nil {
					t.Fatal(err)
				}
				if tc.name == "past the bound of parameters" {
					if len(got) != len(many)+1 || got[0] != "w00000/blue" || got[len(got)-1] != "z/blue" {
						t.Fatalf("%d rows, want %d", len(got), len(many)+1)
					}
					return
				}
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("rows %q, want %q", got, tc.want)
				}
			})
		}
	})
}

// TestQueryNative runs queries past gorm's statement builder, in and out
// of a transaction, and checks that they see the transaction's rows, are
// counted by the pool's logger, and pass a slice to Postgres as one array
// parameter, where gorm would have spread it into a list.
func TestQueryNative(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := openWidgets(t, dsn)
		stmts := dbtest.CountStatements(t, gdb)
		pg := db.DialectOf(gdb) == db.Postgres
		names := func(ctx context.Context) ([]string, error) {
			query, args := "SELECT name FROM widgets WHERE name IN (?, ?) ORDER BY name", []any{"a", "b"}
			if pg {
				query, args = "SELECT name FROM widgets WHERE name = ANY ($1) ORDER BY name", []any{[]string{"a", "b"}}
			}
			rows, err := db.QueryNative(ctx, gdb, query, args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return nil, err
				}
				out = append(out, n)
			}
			return out, rows.Err()
		}
		var inTx []string
		err := db.Transact(ctx, gdb, func(ctx context.Context) error {
			if err := db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES ('a'), ('b'), ('c')").Error; err != nil {
				return err
			}
			var err error
			inTx, err = names(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		after, err := names(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range [][]string{inTx, after} {
			if strings.Join(got, ",") != "a,b" {
				t.Fatalf("QueryNative = %q, want a and b: in the transaction %q, after it %q", got, inTx, after)
			}
		}
		if n := stmts.Load(); n != 3 {
			t.Fatalf("the logger saw %d statements, want 3", n)
		}
	})
}

// TestWriteInsertsOrder checks on Postgres that the INSERTs that one
// statement joins run in the order given, which the locks of tables'
// triggers depend on (Postgres's documentation leaves it open), and that
// the rows of a Last batch go after every other batch's in the commit's
// statement, that Queued shows a transaction its rows before the commit,
// and that the batch's Err makes the error of a failed statement.
func TestWriteInsertsOrder(t *testing.T) {
	ctx := context.Background()
	gdb := openWidgets(t, dbtest.PostgresDSN(t))
	stmts := dbtest.CountStatements(t, gdb)
	for _, stmt := range []string{
		"CREATE SEQUENCE test_order",
		"CREATE TABLE t_a (name TEXT NOT NULL UNIQUE, n BIGINT NOT NULL DEFAULT nextval('test_order'))",
		"CREATE TABLE t_b (name TEXT NOT NULL, n BIGINT NOT NULL DEFAULT nextval('test_order'))",
		"CREATE TABLE t_c (name TEXT NOT NULL, n BIGINT NOT NULL DEFAULT nextval('test_order'))",
	} {
		if err := gdb.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	in := func(table string, names ...string) db.Insert {
		ins := db.Insert{Table: table, Columns: []string{"name"}}
		for _, n := range names {
			ins.Rows = append(ins.Rows, []any{n})
		}
		return ins
	}
	errOwn := errors.New("a row of the last batch is there already")
	var failedRows []string
	last := &db.Batch[string]{Table: "t_a", Columns: []string{"name"}, Values: func(n string) []any { return []any{n} }, Last: true,
		Err: func(err error, rows []string) error {
			if !db.IsUniqueViolation(err) {
				return err
			}
			failedRows = rows
			return fmt.Errorf("%w: %v", errOwn, err)
		}}
	other := &db.Batch[string]{Table: "t_b", Columns: []string{"name"}, Values: func(n string) []any { return []any{n} }}
	var queued []string
	for _, tc := range []struct {
		name    string
		fn      func(ctx context.Context) error
		want    string // the rows in the order they were written
		wantErr error
	}{
		{name: "three tables in one statement", fn: func(ctx context.Context) error {
			return db.WriteInserts(db.Conn(ctx, gdb), in("t_a", "a1", "a2"), in("t_b", "b1"), in("t_c", "c1"))
		}, want: "a1,a2,b1,c1"},
		{name: "the other way round", fn: func(ctx context.Context) error {
			return db.WriteInserts(db.Conn(ctx, gdb), in("t_c", "c1"), in("t_b", "b1"), in("t_a", "a1"))
		}, want: "c1,b1,a1"},
		{name: "a last batch, queued first, goes last", fn: func(ctx context.Context) error {
			if err := last.Add(ctx, "l1"); err != nil {
				return err
			}
			if err := other.Add(ctx, "o1"); err != nil {
				return err
			}
			if err := last.Add(ctx, "l2"); err != nil {
				return err
			}
			queued = append([]string(nil), last.Queued(ctx)...)
			return nil
		}, want: "o1,l1,l2"},
		{name: "the last batch's error", fn: func(ctx context.Context) error {
			if err := db.Conn(ctx, gdb).Exec("INSERT INTO t_a (name) VALUES ('dup')").Error; err != nil {
				return err
			}
			if err := other.Add(ctx, "o2"); err != nil {
				return err
			}
			return last.Add(ctx, "l3", "dup")
		}, wantErr: errOwn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmts.Store(0)
			err := db.Transact(ctx, gdb, tc.fn)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || strings.Join(failedRows, ",") != "l3,dup" {
					t.Errorf("Transact = %v with rows %q, want %v with l3,dup", err, failedRows, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := stmts.Load(); n != 1 {
				t.Errorf("%d statements, want 1", n)
			}
			var got []string
			if err := gdb.Raw("SELECT name FROM (SELECT name, n FROM t_a UNION ALL SELECT name, n FROM t_b UNION ALL SELECT name, n FROM t_c) u ORDER BY n").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("rows written in the order %q, want %q", got, tc.want)
			}
			for _, table := range []string{"t_a", "t_b", "t_c"} {
				if err := gdb.Exec("DELETE FROM " + table).Error; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if strings.Join(queued, ",") != "l1,l2" {
		t.Errorf("Queued in the transaction = %q, want l1,l2", queued)
	}
	if q := last.Queued(ctx); q != nil {
		t.Errorf("Queued outside a transaction = %q, want none", q)
	}
}
