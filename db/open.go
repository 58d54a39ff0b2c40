package db

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxOpenConns caps the pool. If zero, 16 is used for SQLite and 20 for
	// Postgres.
	MaxOpenConns int
	// SlowQuery is the duration above which a query is logged at warn level.
	// If zero, 200ms is used; a negative value turns slow-query logging off.
	SlowQuery time.Duration
	// Logger receives slow-query lines. If nil, nothing is logged.
	Logger *slog.Logger
}

// sqlitePools holds, per SQLite pool, the write semaphore that Transact
// takes before it begins a write transaction and the state of its
// background checkpoints (see sqlitePool).
var sqlitePools sync.Map // *sql.DB -> *sqlitePool

// pgPools holds the Postgres pools that Open made, whose connections are
// pgConns: Transact sends the COMMIT of a transaction on them together with
// its last statement (see commitAfter).
var pgPools sync.Map // *sql.DB -> true

// Open opens the database that dsn names and checks that it answers.
//
// SQLite files are created with their parent directory, private to their
// owner (0600 in a 0700 directory), in WAL mode, with foreign keys on, a
// 10 s busy timeout and BEGIN IMMEDIATE transactions, so that a write
// transaction never fails half-way on a lock upgrade. Their WAL is
// checkpointed in the background, off the writers' path (see
// sqlitePool), and truncated to 64 MB when SQLite starts it over. Postgres
// URLs that carry search_path get their schema created if it is missing.
func Open(ctx context.Context, dsn string, opt Options) (*gorm.DB, error) {
	d, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg := &gorm.Config{
		// SkipDefaultTransaction: single statements are atomic already, and
		// multi-statement writes go through Transact.
		SkipDefaultTransaction: true,
		Logger:                 newGormLogger(opt),
		PrepareStmt:            false,
	}
	var (
		gdb *gorm.DB
	)
	switch d.Dialect {
	case SQLite:
		if err := prepareSQLiteFile(d.Path); err != nil {
			return nil, fmt.Errorf("open %s: %w", d, err)
		}
		gdb, err = gorm.Open(sqlite.New(sqlite.Config{DriverName: sqliteCachedDriver, DSN: sqliteDriverDSN(d.Path)}), cfg)
	case Postgres:
		if d.Schema != "" {
			if err := ensureSchema(ctx, d); err != nil {
				return nil, err
			}
		}
		var pool *sql.DB
		if pool, err = openPostgresPool(d.URL); err == nil {
			gdb, err = gorm.Open(postgres.New(postgres.Config{Conn: pool}), cfg)
			if err != nil {
				_ = pool.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d, err)
	}
	maxOpen := opt.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 20
		if d.Dialect == SQLite {
			maxOpen = 16
		}
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxOpen)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open %s: %w", d, err)
	}
	if d.Dialect == SQLite {
		sqlitePools.Store(sqlDB, newSQLitePool(sqlDB, opt.Logger))
	} else {
		pgPools.Store(sqlDB, true)
	}
	return gdb, nil
}

// Close closes the pool behind gdb.
func Close(gdb *gorm.DB) error {
	sqlDB, err := gdb.DB()
	if err != nil {
		return err
	}
	if p, ok := sqlitePools.LoadAndDelete(sqlDB); ok {
		p.(*sqlitePool).close()
	}
	pgPools.Delete(sqlDB)
	return sqlDB.Close()
}

// DialectOf reports the engine behind gdb.
func DialectOf(gdb *gorm.DB) Dialect {
	if gdb.Dialector.Name() == "postgres" {
		return Postgres
	}
	return SQLite
}

// sqliteDriverDSN builds the go-sqlite3 DSN with the pragmas Strangler relies
// on.
func sqliteDriverDSN(path string) string {
	return "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_txlock=immediate&_synchronous=NORMAL"
}

// openSQL opens a plain database/sql pool, used by the migrations, which
// close the pool they are given.
func openSQL(d DSN) (*sql.DB, error) {
	switch d.Dialect {
	case SQLite:
		if err := prepareSQLiteFile(d.Path); err != nil {
			return nil, err
		}
		return sql.Open("sqlite3", sqliteDriverDSN(d.Path))
	default:
		return sql.Open("pgx", d.URL)
	}
}

// ensureSchema creates the schema named by the DSN's search_path. It
// connects without the search_path, since pgx would otherwise set a path to a
// schema that does not exist yet (which Postgres accepts, but confuses
// current_schema()).
func ensureSchema(ctx context.Context, d DSN) error {
	base, err := withoutSearchPath(d.URL)
	if err != nil {
		return err
	}
	conn, err := sql.Open("pgx", base)
	if err != nil {
		return fmt.Errorf("create schema %q: %w", d.Schema, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+d.Schema+`"`); err != nil {
		return fmt.Errorf("create schema %q in %s: %w", d.Schema, d, err)
	}
	return nil
}

// gormLogger reports slow queries through slog and nothing else: errors are
// returned to the callers, who decide whether they matter.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func newGormLogger(opt Options) logger.Interface {
	if opt.Logger == nil || opt.SlowQuery < 0 {
		return logger.Discard
	}
	slow := opt.SlowQuery
	if slow == 0 {
		slow = 200 * time.Millisecond
	}
	return &gormLogger{log: opt.Logger, slow: slow}
}

func (l *gormLogger) LogMode(logger.LogLevel) logger.Interface      { return l }
func (l *gormLogger) Info(context.Context, string, ...interface{})  {}
func (l *gormLogger) Warn(context.Context, string, ...interface{})  {}
func (l *gormLogger) Error(context.Context, string, ...interface{}) {}

func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if d := time.Since(begin); d >= l.slow {
		sqlText, rows := fc()
		l.log.WarnContext(ctx, "slow query", "duration_ms", d.Milliseconds(), "rows", rows, "sql", truncate(sqlText, 500))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
