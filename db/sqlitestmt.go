package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strconv"
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
	sc := c.(*sqlite3.SQLiteConn)
	// The WAL is checkpointed in the background (see sqlitePool); a
	// commit only checkpoints itself past the backstop.
	pragmas := "PRAGMA wal_autocheckpoint = " + strconv.Itoa(autocheckpointPages) + "; PRAGMA journal_size_limit = " + strconv.Itoa(journalSizeLimit)
	if _, err := sc.Exec(pragmas, nil); err != nil {
		_ = sc.Close()
		return nil, err
	}
	return &cachingConn{SQLiteConn: sc, stmts: map[string]*cachedStmt{}}, nil
}

// cachingConn keeps the queries it has run prepared, keyed by their text,
// and the writes that return no rows (see cacheableExec). Their rows reset
// a query's statement when closed; go-sqlite3 leaves an executed statement
// as it is, which for such a write has run to its end, and resets it
// before it binds the next arguments. database/sql uses a connection from
// one goroutine at a time, so the cache needs no lock.
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

// cacheableExec reports whether query, run by Exec, can be kept prepared:
// one INSERT, UPDATE or DELETE without RETURNING, which runs to its end in
// the one step Exec takes. A statement that returns rows would stay
// half-run, and hold up the transaction's commit, until its next use.
func cacheableExec(query string) bool {
	if !cacheable(query) {
		return false
	}
	q := strings.TrimSpace(query)
	verb, _, _ := strings.Cut(q, " ")
	switch strings.ToUpper(verb) {
	case "INSERT", "UPDATE", "DELETE":
		return !strings.Contains(strings.ToUpper(q), "RETURNING")
	}
	return false
}

// ExecContext runs a write that returns no rows on its cached statement,
// preparing it the first time, and any other text as go-sqlite3 does.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if !cacheableExec(query) {
		return c.SQLiteConn.ExecContext(ctx, query, args)
	}
	cs, err := c.cached(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil || cs.busy {
		return c.SQLiteConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

// cached returns the cached statement of query, preparing it the first
// time, or nil when the cache is full.
func (c *cachingConn) cached(ctx context.Context, query string) (*cachedStmt, error) {
	if cs, ok := c.stmts[query]; ok {
		return cs, nil
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil, nil
	}
	s, err := c.SQLiteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{stmt: s.(*sqlite3.SQLiteStmt)}
	c.stmts[query] = cs
	return cs, nil
}

// QueryContext runs query on its cached statement, preparing it the first
// time; a query whose statement is busy with open rows, or past the
// cache's bound, runs uncached.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if !cacheable(query) {
		return c.SQLiteConn.QueryContext(ctx, query, args)
	}
	cs, err := c.cached(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil || cs.busy {
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
