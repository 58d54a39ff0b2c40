package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// openPostgresWidgets opens the widgets database on a private Postgres
// database with a pool of one connection, so that every transaction of a
// test runs on the connection the one before it left, and whatever state
// a transaction left on it shows in the next.
func openPostgresWidgets(t *testing.T) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	dsn := dbtest.PostgresDSN(t)
	if err := db.MigrateUp(ctx, dsn, widgets); err != nil {
		t.Fatal(err)
	}
	gdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(gdb) })
	// deferred has a unique key that Postgres checks at the commit, the
	// statement that Transact sends together with the last INSERT.
	if err := gdb.Exec("CREATE TABLE deferred (k INTEGER NOT NULL, CONSTRAINT deferred_k UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)").Error; err != nil {
		t.Fatal(err)
	}
	return gdb
}

// TestPostgresTransactions runs transactions on the pool that Open makes,
// whose connections send a transaction's BEGIN with its first statement
// and Transact's COMMIT with its last INSERT, and checks that they mean
// what separate statements meant: what commits is there, what fails is
// not, each error is the statement's own, and the connection is left
// outside any transaction for the next one.
func TestPostgresTransactions(t *testing.T) {
	gdb := openPostgresWidgets(t)
	ctx := context.Background()
	insert := func(ctx context.Context, name string) error {
		return db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES (?)", name).Error
	}
	xid := func(ctx context.Context) (string, error) {
		var id string
		err := db.Conn(ctx, gdb).Raw("SELECT pg_current_xact_id()::text").Scan(&id).Error
		return id, err
	}
	widgetBatch := &db.Batch[string]{Table: "widgets", Columns: []string{"name"}, Values: func(n string) []any { return []any{n} }}
	deferredBatch := &db.Batch[int]{Table: "deferred", Columns: []string{"k"}, Values: func(k int) []any { return []any{k} }}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		fn   func(ctx context.Context) error
		// wantErr, if set, is the error Transact returns; wantCode, if
		// set, the SQLSTATE of the *pgconn.PgError it wraps.
		wantErr  error
		wantCode string
		// wantText is a part of the error's text.
		wantText string
		want     []string
	}{
		{name: "nothing in it", fn: func(context.Context) error { return nil }},
		{name: "nothing in it, rolled back", fn: func(context.Context) error { return boom }, wantErr: boom},
		{name: "a query first, in the transaction", fn: func(ctx context.Context) error {
			first, err := xid(ctx)
			if err != nil {
				return err
			}
			if err := insert(ctx, "a"); err != nil {
				return err
			}
			if second, err := xid(ctx); err != nil || second != first {
				return fmt.Errorf("the second statement ran in transaction %s (%v), the first in %s", second, err, first)
			}
			return nil
		}, want: []string{"a"}},
		{name: "an exec first, rolled back", fn: func(ctx context.Context) error {
			if err := insert(ctx, "gone"); err != nil {
				return err
			}
			return boom
		}, wantErr: boom},
		{name: "the first statement fails", fn: func(ctx context.Context) error {
			return db.Conn(ctx, gdb).Exec("INSERT INTO no_such_table VALUES (1)").Error
		}, wantCode: "42P01"},
		{name: "the first query fails", fn: func(ctx context.Context) error {
			var n int
			return db.Conn(ctx, gdb).Raw("SELECT 1 / (SELECT COUNT(*) FROM widgets WHERE name = 'none')").Scan(&n).Error
		}, wantCode: "22012"},
		{name: "batched rows commit with the last insert", fn: func(ctx context.Context) error {
			if err := insert(ctx, "direct"); err != nil {
				return err
			}
			return widgetBatch.Add(ctx, "b1", "b2")
		}, want: []string{"direct", "b1", "b2"}},
		{name: "batched rows alone", fn: func(ctx context.Context) error {
			return widgetBatch.Add(ctx, "only")
		}, want: []string{"only"}},
		{name: "the last insert fails", fn: func(ctx context.Context) error {
			if err := insert(ctx, "before"); err != nil {
				return err
			}
			return widgetBatch.Add(ctx, "twice", "twice")
		}, wantCode: "23505", wantText: "insert 2 rows into widgets"},
		{name: "the commit fails", fn: func(ctx context.Context) error {
			if err := insert(ctx, "before-commit"); err != nil {
				return err
			}
			return deferredBatch.Add(ctx, 7, 7)
		}, wantCode: "23505", wantText: "commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Transact(ctx, gdb, tc.fn)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Transact = %v, want %v", err, tc.wantErr)
				}
			case tc.wantCode != "":
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != tc.wantCode {
					t.Fatalf("Transact = %v, want a Postgres error %s", err, tc.wantCode)
				}
			case err != nil:
				t.Fatalf("Transact: %v", err)
			}
			if tc.wantText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantText)) {
				t.Fatalf("Transact = %v, want an error that says %q", err, tc.wantText)
			}
			var got []string
			if err := gdb.Raw("SELECT name FROM widgets ORDER BY id").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Fatalf("widgets after the transaction = %q, want %q", got, tc.want)
			}
			var deferred int64
			if err := gdb.Raw("SELECT COUNT(*) FROM deferred").Scan(&deferred).Error; err != nil {
				t.Fatal(err)
			}
			if deferred != 0 {
				t.Fatalf("deferred has %d rows, want none: its rows never commit", deferred)
			}
			// The pool's one connection is out of any transaction: two
			// statements on it get a transaction each.
			a, errA := xid(ctx)
			b, errB := xid(ctx)
			if errA != nil || errB != nil || a == b {
				t.Fatalf("two statements after the transaction ran in transactions %s (%v) and %s (%v), want two", a, errA, b, errB)
			}
			if err := gdb.Exec("DELETE FROM widgets").Error; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPostgresTransactionOptions begins transactions with an isolation
// level or read-only, which send their BEGIN at once, with the options,
// and checks that the options hold and that they commit.
func TestPostgresTransactionOptions(t *testing.T) {
	gdb := openPostgresWidgets(t)
	ctx := context.Background()
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts      sql.TxOptions
		isolation string
		readOnly  string
	}{
		{opts: sql.TxOptions{}, isolation: "read committed", readOnly: "off"},
		{opts: sql.TxOptions{Isolation: sql.LevelSerializable}, isolation: "serializable", readOnly: "off"},
		{opts: sql.TxOptions{Isolation: sql.LevelRepeatableRead}, isolation: "repeatable read", readOnly: "off"},
		{opts: sql.TxOptions{ReadOnly: true}, isolation: "read committed", readOnly: "on"},
	} {
		t.Run(tc.isolation+"/read-only "+tc.readOnly, func(t *testing.T) {
			tx, err := sqlDB.BeginTx(ctx, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			var iso, ro string
			if err := tx.QueryRowContext(ctx, "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')").Scan(&iso, &ro); err != nil {
				t.Fatal(err)
			}
			if iso != tc.isolation || ro != tc.readOnly {
				t.Fatalf("transaction_isolation %q, transaction_read_only %q; want %q, %q", iso, ro, tc.isolation, tc.readOnly)
			}
			_, err = tx.ExecContext(ctx, "INSERT INTO widgets (name) VALUES ($1)", tc.isolation+tc.readOnly)
			var pe *pgconn.PgError
			if tc.opts.ReadOnly {
				if !errors.As(err, &pe) || pe.Code != "25006" {
					t.Fatalf("INSERT in a read-only transaction = %v, want 25006", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := gdb.Raw("SELECT COUNT(*) FROM widgets WHERE name = ?", tc.isolation+tc.readOnly).Scan(&n).Error; err != nil || n != 1 {
				t.Fatalf("committed rows = %d (%v), want 1", n, err)
			}
		})
	}
}

// TestPostgresFirstQueryValues reads values of every common type as the
// first statement of transactions, and outside any, where pgx's
// database/sql rows read them, and checks that both give the same Go
// values. A connection sends a query with its transaction's BEGIN once it
// has read the query's columns and knows that they read the same in a
// batch; the other queries, and the first run of each, go after a BEGIN of
// their own.
func TestPostgresFirstQueryValues(t *testing.T) {
	gdb := openPostgresWidgets(t)
	ctx := context.Background()
	read := func(ctx context.Context, query string) ([]any, []string, error) {
		rows, err := db.Conn(ctx, gdb).Raw(query).Rows()
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return nil, nil, err
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if !rows.Next() {
			return nil, nil, fmt.Errorf("no row: %v", rows.Err())
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		return vals, cols, rows.Err()
	}
	for _, tc := range []struct {
		name      string
		query     string
		pipelined bool
	}{
		{name: "types that read the same in a batch", pipelined: true, query: `SELECT true, false, '\x0102'::bytea,
	7::int2, 70000::int4, 5000000000::int8, 1.5::float4, 2.25::float8, 'text'::text, 'var'::varchar(10), 'c'::char(3),
	'n'::name, DATE '2024-02-29', TIMESTAMP '2024-02-29 12:34:56.789', TIMESTAMPTZ '2024-02-29 12:34:56.789+02',
	42::oid, NULL::text, NULL::int8, NULL::timestamptz`},
		{name: "types that do not", query: `SELECT 12.345::numeric, '{"a": [1, 2]}'::json, '{"b": true}'::jsonb,
	'6f1c8bd0-3d1e-4a38-9c43-0f2a5b0d7a11'::uuid, ARRAY['x', 'y'], ARRAY[1, 2], INTERVAL '1 day 2 hours',
	'<a/>'::xml, '192.168.0.1'::inet, 'text'::text`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantCols, err := read(ctx, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			for run := 1; run <= 3; run++ {
				before := db.PipelinedBegins()
				var got []any
				var gotCols []string
				if err := db.Transact(ctx, gdb, func(ctx context.Context) error {
					got, gotCols, err = read(ctx, tc.query)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				pipelined := db.PipelinedBegins() > before
				if wantPipelined := tc.pipelined && run > 1; pipelined != wantPipelined {
					t.Fatalf("run %d: sent with the BEGIN %v, want %v", run, pipelined, wantPipelined)
				}
				if !reflect.DeepEqual(gotCols, wantCols) {
					t.Fatalf("run %d: columns in a transaction %q, outside %q", run, gotCols, wantCols)
				}
				for i := range want {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("run %d: column %d: in a transaction %#v (%T), outside %#v (%T)", run, i+1, got[i], got[i], want[i], want[i])
					}
				}
			}
		})
	}
}

// TestPostgresTransactionCancelled ends a transaction's context after its
// first statement and checks that it rolls back and leaves the pool's
// connection usable and outside any transaction.
func TestPostgresTransactionCancelled(t *testing.T) {
	gdb := openPostgresWidgets(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := db.Transact(ctx, gdb, func(ctx context.Context) error {
		if err := db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES ('cancelled')").Error; err != nil {
			return err
		}
		cancel()
		return db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES ('after')").Error
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Transact = %v, want context.Canceled", err)
	}
	insertInNextTransaction(t, gdb, "next")
	wantWidgets(t, gdb, "only the next transaction's", []string{"next"})
}

// TestPostgresPipelinedQueryFails makes a query that its connection sends
// with the BEGIN fail, and checks that the transaction returns the
// query's error, rolls back, and leaves the connection for the next one.
func TestPostgresPipelinedQueryFails(t *testing.T) {
	gdb := openPostgresWidgets(t)
	ctx := context.Background()
	if err := gdb.Exec("INSERT INTO widgets (name) VALUES ('one')").Error; err != nil {
		t.Fatal(err)
	}
	// ratio divides by the number of widgets called name: by zero when
	// there is none.
	ratio := func(ctx context.Context, name string) error {
		var n int
		return db.Conn(ctx, gdb).Raw("SELECT 1 / COUNT(*)::int4 FROM widgets WHERE name = ?", name).Scan(&n).Error
	}
	for run := 1; run <= 2; run++ {
		if err := db.Transact(ctx, gdb, func(ctx context.Context) error { return ratio(ctx, "one") }); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	before := db.PipelinedBegins()
	err := db.Transact(ctx, gdb, func(ctx context.Context) error {
		if err := ratio(ctx, "none"); err != nil {
			return err
		}
		return db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES ('two')").Error
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "22012" {
		t.Fatalf("Transact = %v, want division by zero (22012)", err)
	}
	if db.PipelinedBegins() == before {
		t.Fatal("the failing query did not go with the BEGIN; the test tests nothing")
	}
	insertInNextTransaction(t, gdb, "three")
	wantWidgets(t, gdb, "one and three", []string{"one", "three"})
}

// TestPostgresCommitAfter commits a transaction with a statement that
// carries the COMMIT, as Transact's last INSERT does, and checks that the
// rows are committed, that Commit then only reports it, and that a
// statement after it fails rather than run outside the transaction.
func TestPostgresCommitAfter(t *testing.T) {
	gdb := openPostgresWidgets(t)
	ctx := context.Background()
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (name) VALUES ($1)", db.CommitAfter, "committed"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (name) VALUES ($1)", "outside"); err == nil {
		t.Fatal("a statement after the commit ran")
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit = %v, want nil: the transaction committed", err)
	}
	wantWidgets(t, gdb, "only the committed one", []string{"committed"})
}

// insertInNextTransaction inserts a widget called name in a transaction
// of its own: the one after the test's, on the pool's one connection.
func insertInNextTransaction(t *testing.T, gdb *gorm.DB, name string) {
	t.Helper()
	if err := db.Transact(context.Background(), gdb, func(ctx context.Context) error {
		return db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES (?)", name).Error
	}); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
}

// wantWidgets fails the test unless the widgets are want, by id; why says
// what they should be.
func wantWidgets(t *testing.T, gdb *gorm.DB, why string, want []string) {
	t.Helper()
	var names []string
	if err := gdb.Raw("SELECT name FROM widgets ORDER BY id").Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("widgets = %q, want %s", names, why)
	}
}
