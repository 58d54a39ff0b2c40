package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgConnector is the database/sql connector of the Postgres pools that
// Open makes: pgx's, with its connections wrapped in pgConn, which saves
// a transaction's BEGIN and COMMIT their round trips of their own.
type pgConnector struct {
	driver.Connector
}

// openPostgresPool returns the pool of the Postgres database at url.
func openPostgresPool(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)}), nil
}

// Connect opens a connection and wraps it.
func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		_ = dc.Close()
		return nil, fmt.Errorf("db: pgx's connector gave a %T, not a *stdlib.Conn", dc)
	}
	return &pgConn{Conn: sc}, nil
}

// pgConn is one of pgx's database/sql connections whose transactions, in
// the default isolation and read-write, send their BEGIN together with
// their first statement, one round trip where pgx's own take two, and
// whose last statement before the commit may carry the COMMIT with it (see
// commitAfter): per transaction two round trips fewer, each of which costs
// the server two socket calls and a context switch. The statements are
// those pgx would send, in the extended protocol, pipelined with a single
// Sync, so that their meaning is unchanged: the BEGIN opens an explicit
// transaction block that the Sync does not end, and the COMMIT is the same
// COMMIT, which with synchronous_commit answers only once the WAL is
// flushed.
type pgConn struct {
	*stdlib.Conn
	// tx is the transaction open on the connection, if any.
	tx *pgTx
	// shapes says of the queries that began a transaction on the
	// connection whether their columns read the same in a batch (see
	// learn).
	shapes map[string]bool
}

// commitAfter, as the first argument of an Exec in a transaction on a
// pgConn, makes the connection commit the transaction right after the
// statement, in the same round trip; the transaction's Commit then only
// reports how that went. Transact passes it with the last statement that
// its flush writes, on pools that pgPools holds.
type commitAfter struct{}

// pgTx is a transaction on a pgConn.
type pgTx struct {
	c *pgConn
	// ctx is the transaction's context, which its COMMIT runs under, as
	// pgx's does.
	ctx context.Context
	// pending is true while the BEGIN waits for the first statement.
	pending bool
	// ended is true once a pipelined COMMIT ran, whatever its outcome.
	ended bool
}

var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.NamedValueChecker  = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
)

// Begin begins a transaction.
func (c *pgConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx begins a transaction. One in the default isolation and
// read-write sends nothing yet: its BEGIN goes with its first statement.
// Postgres takes a transaction's first snapshot at its first statement
// either way, so the transaction sees what it would have seen.
func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	if opts.Isolation != driver.IsolationLevel(sql.LevelDefault) || opts.ReadOnly {
		// pgx sends the BEGIN with the options now. pgTx ends the
		// transaction with a COMMIT or ROLLBACK of its own, which pgx's
		// transaction object never learns of: it keeps no state that
		// matters beyond the server's.
		if _, err := c.Conn.BeginTx(ctx, opts); err != nil {
			return nil, err
		}
		c.tx = &pgTx{c: c, ctx: ctx}
		return c.tx, nil
	}
	c.tx = &pgTx{c: c, ctx: ctx, pending: true}
	return c.tx, nil
}

// ExecContext runs query, with the pending BEGIN before it and, when args
// start with commitAfter, the COMMIT after it, in one round trip.
func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	commit := len(args) > 0 && isCommitAfter(args[0].Value)
	if commit {
		args = args[1:]
	}
	tx := c.tx
	if tx != nil && tx.ended {
		return nil, errCommitted
	}
	if tx == nil || !tx.pending && !commit {
		return c.Conn.ExecContext(ctx, query, args)
	}
	conn := c.Conn.Conn()
	if conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	b := &pgx.Batch{}
	begin := tx.pending
	if begin {
		b.Queue("BEGIN")
		tx.pending = false
	}
	b.Queue(query, plainArgs(args)...)
	if commit {
		b.Queue("COMMIT")
		tx.ended = true
	}
	br := conn.SendBatch(ctx, b)
	tag, err := execBatch(br, begin, commit)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// execBatch reads the results of a batch of ExecContext: the BEGIN if
// begin, the statement, and the COMMIT if commit. It returns the
// statement's command tag and the first error.
func execBatch(br pgx.BatchResults, begin, commit bool) (pgconn.CommandTag, error) {
	if begin {
		if _, err := br.Exec(); err != nil {
			return pgconn.CommandTag{}, fmt.Errorf("begin: %w", err)
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	if commit {
		if err := checkCommit(br.Exec()); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	return tag, nil
}

// checkCommit turns the outcome of a COMMIT into an error: Postgres
// answers ROLLBACK, not an error, to the COMMIT of a failed transaction.
func checkCommit(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() == "ROLLBACK" {
		return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}

// QueryContext returns the rows of a Together's query that its only
// argument, prefetched, carries. Else it runs query, with the pending
// BEGIN before it in one round trip when the connection has read the query's columns before and every
// one is of a type that reads the same in a batch (see shapes); else it
// sends the BEGIN on its own first, and learns the columns.
func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) == 1 {
		if p, ok := args[0].Value.(prefetched); ok {
			return p.rows, nil
		}
	}
	tx := c.tx
	if tx != nil && tx.ended {
		return nil, errCommitted
	}
	if tx == nil || !tx.pending {
		return c.Conn.QueryContext(ctx, query, args)
	}
	conn := c.Conn.Conn()
	if conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	if !c.shapes[query] {
		if err := c.beginNow(ctx); err != nil {
			return nil, err
		}
		rows, err := c.Conn.QueryContext(ctx, query, args)
		if err == nil {
			c.learn(query, rows)
		}
		return rows, err
	}
	tx.pending = false
	pipelinedBegins.Add(1)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(query, plainArgs(args)...)
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("begin: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	// As pgx's own rows do, read the first row now, so that an error of
	// the statement is the error of the query.
	more := rows.Next()
	if err := rows.Err(); err != nil {
		rows.Close()
		_ = br.Close()
		return nil, err
	}
	return &batchRows{br: br, rows: rows, m: conn.TypeMap(), first: true, more: more}, nil
}

// pipelinedBegins counts the queries sent in one batch with their
// transaction's BEGIN, for the tests.
var pipelinedBegins atomic.Int64

// maxShapes bounds the queries a connection remembers the columns of.
const maxShapes = 256

// learn records in c.shapes whether every column of rows, pgx's rows of
// query, is of a type that batchRows reads as pgx's rows do: those that
// pgx's database/sql rows read in the binary format, which a batch asks
// for too, and the text types, which read the same in either format.
// Postgres refuses to run a prepared statement whose columns changed type
// ("cached plan must not change result type"), so what a connection
// learned of a query stays true while pgx keeps the statement prepared.
func (c *pgConn) learn(query string, rows driver.Rows) {
	typed, ok := rows.(driver.RowsColumnTypeDatabaseTypeName)
	if !ok {
		return
	}
	same := true
	for i := range rows.Columns() {
		if !sameInBatch[typed.ColumnTypeDatabaseTypeName(i)] {
			same = false
			break
		}
	}
	if c.shapes == nil || len(c.shapes) >= maxShapes {
		c.shapes = map[string]bool{}
	}
	c.shapes[query] = same
}

// sameInBatch are the names of the types, as pgx's rows give them, that
// read the same in a batch (see learn and valueOf).
var sameInBatch = map[string]bool{
	"BOOL": true, "BYTEA": true, "CID": true, "DATE": true, "FLOAT4": true, "FLOAT8": true, "INT2": true,
	"INT4": true, "INT8": true, "OID": true, "TIMESTAMP": true, "TIMESTAMPTZ": true, "XID": true,
	"TEXT": true, "VARCHAR": true, "BPCHAR": true, "NAME": true,
}

// PrepareContext prepares query, after the pending BEGIN, if any.
func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.beginNow(ctx); err != nil {
		return nil, err
	}
	return c.Conn.PrepareContext(ctx, query)
}

// Prepare prepares query.
func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// beginNow sends the pending BEGIN, if any, on its own.
func (c *pgConn) beginNow(ctx context.Context) error {
	if c.tx == nil || !c.tx.pending {
		return nil
	}
	c.tx.pending = false
	if _, err := c.Conn.Conn().Exec(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return nil
}

// Commit commits the transaction: nothing to do when it sent no
// statement, or when its last statement carried the COMMIT (whose error,
// if any, that statement returned).
func (t *pgTx) Commit() error {
	defer t.done()
	if t.pending || t.ended {
		return nil
	}
	return checkCommit(t.c.Conn.Conn().Exec(t.ctx, "COMMIT"))
}

// Rollback rolls the transaction back, if it is still open on the
// server: not when it never sent its BEGIN, nor after a COMMIT.
func (t *pgTx) Rollback() error {
	defer t.done()
	conn := t.c.Conn.Conn()
	if t.pending || conn.PgConn().TxStatus() == 'I' {
		return nil
	}
	// database/sql rolls back when the transaction's context ends, so the
	// ROLLBACK gets a context of its own. A connection that cannot roll
	// back is closed, so that the pool drops it (see ResetSession).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), rollbackTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = t.c.Conn.Close()
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// rollbackTimeout bounds a ROLLBACK.
const rollbackTimeout = 10 * time.Second

func (t *pgTx) done() {
	if t.c.tx == t {
		t.c.tx = nil
	}
}

// ResetSession forgets a transaction that database/sql did not end
// before the connection's next use, and lets pgx check the connection.
func (c *pgConn) ResetSession(ctx context.Context) error {
	c.tx = nil
	return c.Conn.ResetSession(ctx)
}

// isCommitAfter reports whether v is the commitAfter marker.
func isCommitAfter(v any) bool {
	_, ok := v.(commitAfter)
	return ok
}

// plainArgs returns the values of args, as pgx takes them.
func plainArgs(args []driver.NamedValue) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

// batchRows are the rows of a query sent in a batch, as database/sql
// reads them: the values converted as pgx's own database/sql rows convert
// them (see valueOf).
type batchRows struct {
	br    pgx.BatchResults
	rows  pgx.Rows
	m     *pgtype.Map
	first bool // the first row is read already; more says whether there was one
	more  bool
	cols  []string
	conv  []func([]byte) (driver.Value, error)
}

// Columns returns the names of the columns.
func (r *batchRows) Columns() []string {
	if r.cols == nil {
		fds := r.rows.FieldDescriptions()
		r.cols = make([]string, len(fds))
		for i, fd := range fds {
			r.cols[i] = fd.Name
		}
	}
	return r.cols
}

// Close closes the rows and reads the rest of the batch.
func (r *batchRows) Close() error {
	r.rows.Close()
	err := r.rows.Err()
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// Next reads the next row into dest.
func (r *batchRows) Next(dest []driver.Value) error {
	if r.conv == nil {
		fds := r.rows.FieldDescriptions()
		r.conv = make([]func([]byte) (driver.Value, error), len(fds))
		for i, fd := range fds {
			r.conv[i] = valueOf(r.m, fd)
		}
	}
	more := r.more
	if r.first {
		r.first = false
	} else {
		more = r.rows.Next()
	}
	if !more {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := r.conv[i](raw)
		if err != nil {
			return fmt.Errorf("convert column %s: %w", r.cols0(i), err)
		}
		dest[i] = v
	}
	return nil
}

func (r *batchRows) cols0(i int) string { return r.Columns()[i] }

// valueOf returns the conversion of a column's raw values to the
// driver.Value that pgx's database/sql rows (stdlib.Rows.Next) give for
// its type, for the types in sameInBatch: booleans, bytea, floats,
// integers, dates and timestamps as their Go types, text as a string.
func valueOf(m *pgtype.Map, fd pgconn.FieldDescription) func([]byte) (driver.Value, error) {
	switch fd.DataTypeOID {
	case pgtype.BoolOID:
		return scanAs(m, fd, func(v bool) (driver.Value, error) { return v, nil })
	case pgtype.ByteaOID:
		return scanAs(m, fd, func(v []byte) (driver.Value, error) { return v, nil })
	case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		return scanAs(m, fd, func(v pgtype.Uint32) (driver.Value, error) { return v.Value() })
	case pgtype.DateOID:
		return scanAs(m, fd, func(v pgtype.Date) (driver.Value, error) { return v.Value() })
	case pgtype.Float4OID:
		return scanAs(m, fd, func(v float32) (driver.Value, error) { return float64(v), nil })
	case pgtype.Float8OID:
		return scanAs(m, fd, func(v float64) (driver.Value, error) { return v, nil })
	case pgtype.Int2OID:
		return scanAs(m, fd, func(v int16) (driver.Value, error) { return int64(v), nil })
	case pgtype.Int4OID:
		return scanAs(m, fd, func(v int32) (driver.Value, error) { return int64(v), nil })
	case pgtype.Int8OID:
		return scanAs(m, fd, func(v int64) (driver.Value, error) { return v, nil })
	case pgtype.TimestampOID:
		return scanAs(m, fd, func(v pgtype.Timestamp) (driver.Value, error) { return v.Value() })
	case pgtype.TimestamptzOID:
		return scanAs(m, fd, func(v pgtype.Timestamptz) (driver.Value, error) { return v.Value() })
	default:
		return scanAs(m, fd, func(v string) (driver.Value, error) { return v, nil })
	}
}

// scanAs returns the conversion of a column's raw values that scans them
// into a T and converts that with conv.
func scanAs[T any](m *pgtype.Map, fd pgconn.FieldDescription, conv func(T) (driver.Value, error)) func([]byte) (driver.Value, error) {
	var v T
	plan := m.PlanScan(fd.DataTypeOID, fd.Format, &v)
	return func(raw []byte) (driver.Value, error) {
		if err := plan.Scan(raw, &v); err != nil {
			return nil, err
		}
		return conv(v)
	}
}

// errCommitted is returned for a statement in a transaction after the
// statement that carried its COMMIT: it would run outside the transaction.
var errCommitted = errors.New("db: the transaction has committed with its last statement already")
