package db

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Insert is a multi-row INSERT: Rows, each with one value per column, into
// the Columns of Table. Table and Columns are written into the SQL as they
// are, so they must be names the program chose, never input.
type Insert struct {
	Table   string
	Columns []string
	Rows    [][]any
}

// maxParams bounds the bind parameters of one statement: SQLite's default
// limit, 32,766, the lower of the two engines' (Postgres allows 65,535).
const maxParams = 32766

// WriteInserts writes ins on tx, in as few statements of up to maxParams
// parameters as it can. The rows of INSERTs into the same table and
// columns go in one INSERT, in order; on Postgres, the INSERTs into other
// tables join that statement as data-modifying WITH queries: one round
// trip where an INSERT apiece costs one apiece. The statement lists the
// INSERTs so that they run in the order of ins: Postgres runs the main
// query first and then the WITH queries it does not read from the last to
// the first (its documentation leaves the order open; TestWriteInsertsOrder
// holds it to this), which matters for the locks that tables' triggers take,
// such as the outbox's and the event store's. It checks the foreign keys at
// the statement's end, so rows may refer to rows of another part. SQLite,
// whose statements cost no round trip and which has no data-modifying WITH,
// runs one INSERT per table and columns, in the order of ins.
func WriteInserts(tx *gorm.DB, ins ...Insert) error { return writeInserts(tx, false, ins...) }

// writeInserts is WriteInserts, whose last statement, if commit, carries
// the COMMIT of tx's transaction (see commitAfter): only on a pool in
// pgPools.
func writeInserts(tx *gorm.DB, commit bool, ins ...Insert) error {
	merge := DialectOf(tx) == Postgres
	var (
		parts  []Insert // of the statement being built
		params int
	)
	run := func(last bool) error {
		if len(parts) == 0 {
			return nil
		}
		var args []any
		stmts := make([]string, len(parts))
		tables := make([]string, len(parts))
		rows := 0
		for i, p := range parts {
			stmts[i] = insertSQL(p.Table, p.Columns, p.Rows, &args, merge)
			tables[i] = p.Table
			rows += len(p.Rows)
		}
		// The first INSERT is the main query, which runs first; the others
		// follow as WITH queries listed from the last, which run after it
		// in the reverse of their listing.
		sql := stmts[0]
		if len(stmts) > 1 {
			var sb strings.Builder
			sb.WriteString("WITH ")
			for i := len(stmts) - 1; i > 0; i-- {
				if i < len(stmts)-1 {
					sb.WriteString(", ")
				}
				fmt.Fprintf(&sb, "w%d AS (%s)", len(stmts)-i, stmts[i])
			}
			sb.WriteByte(' ')
			sb.WriteString(sql)
			sql = sb.String()
		}
		parts, params = nil, 0
		if last {
			args = append([]any{commitAfter{}}, args...)
		}
		if err := execNative(tx, sql, args); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", rows, strings.Join(tables, ", "), err)
		}
		return nil
	}
	for _, in := range ins {
		per := len(in.Columns)
		if per == 0 {
			return fmt.Errorf("insert into %s: no columns", in.Table)
		}
		for i, r := range in.Rows {
			if len(r) != per {
				return fmt.Errorf("insert into %s: row %d has %d values for %d columns", in.Table, i, len(r), per)
			}
		}
		for rows := in.Rows; len(rows) > 0; {
			if params+per > maxParams {
				if err := run(false); err != nil {
					return err
				}
			}
			p := slices.IndexFunc(parts, func(p Insert) bool { return p.Table == in.Table })
			if p >= 0 && !slices.Equal(parts[p].Columns, in.Columns) || p < 0 && len(parts) > 0 && !merge {
				if err := run(false); err != nil {
					return err
				}
				p = -1
			}
			if p < 0 {
				parts = append(parts, Insert{Table: in.Table, Columns: in.Columns})
				p = len(parts) - 1
			}
			n := min(len(rows), (maxParams-params)/per)
			parts[p].Rows = append(parts[p].Rows, rows[:n]...)
			params += n * per
			rows = rows[n:]
		}
	}
	return run(commit)
}

// execNative runs sql, whose placeholders are the dialect's own, with args
// on tx's connection or transaction, past gorm's statement builder, which
// would copy the SQL of a long INSERT byte by byte and each value in turn:
// an eighth of an order's allocations. tx's logger still sees the
// statement, so that slow ones are logged.
func execNative(tx *gorm.DB, sql string, args []any) error {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	begin := time.Now()
	res, err := tx.Statement.ConnPool.ExecContext(ctx, sql, args...)
	tx.Logger.Trace(ctx, begin, func() (string, int64) {
		if err != nil {
			return sql, -1
		}
		n, _ := res.RowsAffected()
		return sql, n
	}, err)
	return err
}

// QueryNative runs query, whose placeholders are the dialect's own ($1 on
// Postgres), with args on the transaction ctx carries or on gdb, past
// gorm's statement builder: args go to the driver as they are, so that
// a slice is one array parameter on Postgres where gorm would spread it
// into a list, and the caller scans the rows itself, without gorm's
// reflection. The pool's logger still sees the statement, so that slow
// ones are logged. The caller closes the rows.
func QueryNative(ctx context.Context, gdb *gorm.DB, query string, args ...any) (*sql.Rows, error) {
	tx := Conn(ctx, gdb)
	begin := time.Now()
	rows, err := tx.Statement.ConnPool.QueryContext(ctx, query, args...)
	tx.Logger.Trace(ctx, begin, func() (string, int64) { return query, -1 }, err)
	return rows, err
}

// insertSQL returns the INSERT of rows into the columns of table, with
// the dialect's placeholders, $1 onwards on Postgres (numbered on from the
// values already in args) and ? on SQLite, and appends the rows' values to
// args.
func insertSQL(table string, columns []string, rows [][]any, args *[]any, postgres bool) string {
	var sb strings.Builder
	sb.Grow(32 + len(table) + 16*len(columns) + len(rows)*len(columns)*6)
	sb.WriteString("INSERT INTO ")
	sb.WriteString(table)
	sb.WriteString(" (")
	sb.WriteString(strings.Join(columns, ", "))
	sb.WriteString(") VALUES ")
	for i, r := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for j := range r {
			if j > 0 {
				sb.WriteByte(',')
			}
			if postgres {
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(len(*args) + j + 1))
			} else {
				sb.WriteByte('?')
			}
		}
		sb.WriteByte(')')
		*args = append(*args, r...)
	}
	return sb.String()
}
