package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"
)

// Together runs fns at once, each in a goroutine of its own, and returns
// when all have. On a Postgres pool of Open's, the first query that each
// of them runs outside a transaction through Conn or QueryNative goes to
// the server together with the others' first queries, on one connection,
// in one round trip, where one after the other costs a round trip apiece:
// such as an order's lookups in the customers and the catalog modules,
// which so stay behind their modules' APIs. The first queries wait for
// every fn to have queried or returned. Their rows are read whole
// before they are returned, so they suit lookups of a few rows. Their
// later queries, and every query on SQLite, which has no round trip to
// save, run as they would without Together. The fns report their own
// outcomes, as closures do.
func Together(ctx context.Context, gdb *gorm.DB, fns ...func(ctx context.Context)) {
	g := newGather(ctx, gdb, len(fns))
	if g == nil {
		for _, fn := range fns {
			fn(ctx)
		}
		return
	}
	defer g.close()
	var wg sync.WaitGroup
	for i, fn := range fns {
		p := &participant{g: g, pool: gdb.Statement.ConnPool}
		pctx := context.WithValue(ctx, gatherKey{}, p)
		run := func() {
			defer p.finished()
			fn(pctx)
		}
		if i == len(fns)-1 {
			run()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	wg.Wait()
}

// gatherKey keys the participant of a Together in a context.
type gatherKey struct{}

// gather is one Together's connection and the first queries of its
// participants, which it sends once every participant has queued one or
// finished.
type gather struct {
	// pool is the pool of the gdb that Together was given: only queries
	// on it are gathered.
	pool *sql.DB
	conn *sql.Conn
	// err is why conn could not be had; the queries then run on the pool.
	err error

	mu     sync.Mutex
	left   int // participants that have neither queued a query nor finished
	queued []*gathered
}

// gathered is one participant's first query and, once done is closed,
// its rows or error.
type gathered struct {
	query string
	args  []any
	done  chan struct{}
	rows  *bufferedRows
	err   error
}

// newGather returns the gather of n participants on gdb, or nil when
// gdb is not a Postgres pool of Open's or n is below two.
func newGather(ctx context.Context, gdb *gorm.DB, n int) *gather {
	if n < 2 || InTx(ctx) {
		return nil
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil
	}
	if _, ok := pgPools.Load(sqlDB); !ok {
		return nil
	}
	g := &gather{pool: sqlDB, left: n}
	g.conn, g.err = sqlDB.Conn(ctx)
	return g
}

func (g *gather) close() {
	if g.conn != nil {
		_ = g.conn.Close()
	}
}

// queue adds q and, if it is the last query the gather waits for, sends
// them all.
func (g *gather) queue(ctx context.Context, q *gathered) {
	g.mu.Lock()
	g.queued = append(g.queued, q)
	g.left--
	ready := g.left == 0
	g.mu.Unlock()
	if ready {
		g.send(ctx)
	}
}

// leave takes a participant that finished without querying off the
// count, and sends the queued queries if it was the last one they waited
// for.
func (g *gather) leave(ctx context.Context) {
	g.mu.Lock()
	g.left--
	ready := g.left == 0 && len(g.queued) > 0
	g.mu.Unlock()
	if ready {
		g.send(ctx)
	}
}

// send runs the queued queries on the gather's connection and hands each
// its outcome.
func (g *gather) send(ctx context.Context) {
	err := g.conn.Raw(func(dc any) error {
		c, ok := dc.(*pgConn)
		if !ok {
			return fmt.Errorf("db: Together's connection is a %T, not a pgConn", dc)
		}
		c.runGathered(ctx, g.queued)
		return nil
	})
	for _, q := range g.queued {
		if err != nil && q.err == nil && q.rows == nil {
			q.err = err
		}
		close(q.done)
	}
}

// gatheredBatches counts the round trips that carried several of a
// Together's queries, for the tests.
var gatheredBatches atomic.Int64

// runGathered runs qs: in one batch when the connection knows every one's
// columns to read the same in a batch (see learn), else, and for any that
// failed in the batch, one by one, learning their columns.
func (c *pgConn) runGathered(ctx context.Context, qs []*gathered) {
	batch := len(qs) > 1
	for _, q := range qs {
		batch = batch && c.shapes[q.query]
	}
	if batch {
		gatheredBatches.Add(1)
		b := &pgx.Batch{}
		for _, q := range qs {
			b.Queue(q.query, q.args...)
		}
		conn := c.Conn.Conn()
		br := conn.SendBatch(ctx, b)
		for _, q := range qs {
			rows, err := br.Query()
			if err == nil {
				q.rows, err = bufferBatch(rows, conn.TypeMap())
			}
			if err != nil {
				q.rows = nil
			}
		}
		_ = br.Close()
	}
	for _, q := range qs {
		if q.rows != nil {
			continue
		}
		named := make([]driver.NamedValue, len(q.args))
		for i, a := range q.args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := c.Conn.QueryContext(ctx, q.query, named)
		if err != nil {
			q.err = err
			continue
		}
		c.learn(q.query, rows)
		q.rows, q.err = bufferDriver(rows)
	}
}

// bufferBatch reads rows of a batch whole, converting the values as
// batchRows does, and closes them.
func bufferBatch(rows pgx.Rows, m *pgtype.Map) (*bufferedRows, error) {
	defer rows.Close()
	out := &bufferedRows{}
	var conv []func([]byte) (driver.Value, error)
	for rows.Next() {
		if conv == nil {
			out.cols, conv = batchColumns(rows, m)
		}
		row := make([]driver.Value, len(conv))
		for i, raw := range rows.RawValues() {
			if raw == nil {
				continue
			}
			v, err := conv[i](raw)
			if err != nil {
				return nil, fmt.Errorf("convert column %s: %w", out.cols[i], err)
			}
			row[i] = ownBytes(v)
		}
		out.vals = append(out.vals, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if out.cols == nil {
		out.cols, _ = batchColumns(rows, m)
	}
	return out, nil
}

// batchColumns returns the names of the columns of rows and their
// conversions (see valueOf).
func batchColumns(rows pgx.Rows, m *pgtype.Map) ([]string, []func([]byte) (driver.Value, error)) {
	fds := rows.FieldDescriptions()
	cols := make([]string, len(fds))
	conv := make([]func([]byte) (driver.Value, error), len(fds))
	for i, fd := range fds {
		cols[i], conv[i] = fd.Name, valueOf(m, fd)
	}
	return cols, conv
}

// bufferDriver reads pgx's database/sql rows whole and closes them.
func bufferDriver(rows driver.Rows) (*bufferedRows, error) {
	defer rows.Close()
	out := &bufferedRows{cols: rows.Columns()}
	for {
		row := make([]driver.Value, len(out.cols))
		if err := rows.Next(row); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		for i, v := range row {
			row[i] = ownBytes(v)
		}
		out.vals = append(out.vals, row)
	}
}

// ownBytes copies a []byte value, which the driver may reuse for the next
// row.
func ownBytes(v driver.Value) driver.Value {
	if b, ok := v.([]byte); ok {
		return append([]byte(nil), b...)
	}
	return v
}

// prefetched, as the only argument of a query on a pgConn, makes it
// return rows read already, as Together's participants get theirs.
type prefetched struct{ rows *bufferedRows }

// bufferedRows are rows read whole, as driver.Rows.
type bufferedRows struct {
	cols []string
	vals [][]driver.Value
}

// Columns returns the names of the columns.
func (r *bufferedRows) Columns() []string { return r.cols }

// Close does nothing: the rows hold no connection.
func (r *bufferedRows) Close() error { return nil }

// Next copies the next row into dest.
func (r *bufferedRows) Next(dest []driver.Value) error {
	if len(r.vals) == 0 {
		return io.EOF
	}
	copy(dest, r.vals[0])
	r.vals = r.vals[1:]
	return nil
}

// participant is one fn of a Together: its first query outside a
// transaction is gathered, the rest go to the pool.
type participant struct {
	g    *gather
	pool gorm.ConnPool
	used bool
}

// finished tells the gather that the participant's fn returned.
func (p *participant) finished() {
	if !p.used {
		p.used = true
		p.g.leave(context.Background())
	}
}

// participantPool returns the participant of a Together that ctx carries,
// for Conn to run the statements on gdb of on, while its first query is
// still to come and gdb is the pool that Together gathers on.
func participantPool(ctx context.Context, gdb *gorm.DB) (gorm.ConnPool, bool) {
	p, ok := ctx.Value(gatherKey{}).(*participant)
	if !ok || p.used || p.g.err != nil {
		return nil, false
	}
	if sqlDB, err := gdb.DB(); err != nil || sqlDB != p.g.pool {
		return nil, false
	}
	return p, true
}

// QueryContext gathers the participant's first query.
func (p *participant) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if p.used {
		return p.pool.QueryContext(ctx, query, args...)
	}
	p.used = true
	q := &gathered{query: query, args: args, done: make(chan struct{})}
	p.g.queue(ctx, q)
	<-q.done
	if q.err != nil {
		return nil, q.err
	}
	return p.g.conn.QueryContext(ctx, query, prefetched{q.rows})
}

// QueryRowContext runs on the pool, after the participant's first query
// is off the gather's count.
func (p *participant) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.finished()
	return p.pool.QueryRowContext(ctx, query, args...)
}

// ExecContext runs on the pool, as QueryRowContext does.
func (p *participant) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	p.finished()
	return p.pool.ExecContext(ctx, query, args...)
}

// PrepareContext prepares on the pool, as QueryRowContext does.
func (p *participant) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	p.finished()
	return p.pool.PrepareContext(ctx, query)
}
