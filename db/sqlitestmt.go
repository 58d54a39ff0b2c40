package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// sqliteCachedDriver is the name of go-sqlite3 with a cache of prepared
// queries per connection, which Open uses for SQLite. go-sqlite3 prepares
// (parses and plans) every statement it runs and finalizes it after, and
// gorm's PrepareStmt does not help inside transactions, where it prepares
// statements bound to the transaction and so again on every one. In an
// order's transaction the prepares were a fifth of its CPU time, all of it
// inside SQLite's single write lock.
const sqliteCachedDriver = "sqlite3-strangler"

// maxCachedStmts bounds the cache of one connection; queries past it run
// as go-sqlite3 runs them, prepared and finalized each time.
const maxCachedStmts = 256

func init() {
	sql.Register(sqliteCachedDriver, cachingDriver{&sqlite3.SQLiteDriver{}})
}

// cachingDriver opens go-sqlite3 connections with a statement cache.
type cachingDriver struct{ *sqlite3.SQLiteDriver }

func (d cachingDriver) Open(dsn string) (driver.Conn, error) {
	c, err := d.SQLiteDriver.Open(dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{SQLiteConn: c.(*sqlite3.SQLiteConn), stmts: map[string]*cachedStmt{}}, nil
}

// cachingConn keeps the queries it has run prepared, keyed by their text.
// Only queries go through the cache: their rows reset the statement when
// closed, where go-sqlite3 leaves an executed statement as it is, so Exec
// runs as before. database/sql uses a connection from one goroutine at a
// time, so the cache needs no lock.
type cachingConn struct {
	*sqlite3.SQLiteConn
	stmts map[string]*cachedStmt
}

// cachedStmt is a prepared query and whether rows of it are open.
type cachedStmt struct {
	stmt *sqlite3.SQLiteStmt
	busy bool
}

// cacheable reports whether query is one statement that can be kept
// prepared: without a ';', which could separate a second statement that
// go-sqlite3 runs only when it prepares the text itself, and not starting
// with a comment, which might be all it holds.
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	return q != "" && !strings.Contains(q, ";") && !strings.HasPrefix(q, "--") && !strings.HasPrefix(q, "/*")
}

// QueryContext runs query on its cached statement, preparing it the first
// time; a query whose statement is busy with open rows, or past the
// cache's bound, runs uncached.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if !cacheable(query) {
		return c.SQLiteConn.QueryContext(ctx, query, args)
	}
	cs, ok := c.stmts[query]
	if !ok {
		if len(c.stmts) >= maxCachedStmts {
			return c.SQLiteConn.QueryContext(ctx, query, args)
		}
		s, err := c.SQLiteConn.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		cs = &cachedStmt{stmt: s.(*sqlite3.SQLiteStmt)}
		c.stmts[query] = cs
	}
	if cs.busy {
		return c.SQLiteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{SQLiteRows: rows.(*sqlite3.SQLiteRows), stmt: cs}, nil
}

// Close finalizes the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	for q, cs := range c.stmts {
		_ = cs.stmt.Close()
		delete(c.stmts, q)
	}
	return c.SQLiteConn.Close()
}

// cachedRows are rows of a cached statement, which they free on Close.
type cachedRows struct {
	*sqlite3.SQLiteRows
	stmt *cachedStmt
}

// Close resets the statement (go-sqlite3 does, for a statement it did not
// prepare itself) and frees it for the next query.
func (r *cachedRows) Close() error {
	err := r.SQLiteRows.Close()
	r.stmt.busy = false
	return err
}
