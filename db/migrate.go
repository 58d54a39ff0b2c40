package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/database/sqlite3"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// Migrations is one golang-migrate set: the schema of one module or service.
// Each set has its own version table, so that a module's schema can move to
// its own database later without untangling a shared history.
type Migrations struct {
	// Name identifies the set, such as "catalog" or "outbox".
	Name string
	// FS holds one directory per dialect, "sqlite" and "postgres", each with
	// golang-migrate files (0001_create_products.up.sql and .down.sql).
	FS fs.FS
	// Table is the version table. If empty, "schema_migrations_<Name>" is
	// used.
	Table string
}

// Status is where a database stands against a migration set.
type Status struct {
	// Name is the set's name.
	Name string `json:"name"`
	// Table is its version table.
	Table string `json:"table"`
	// Version is the applied version; 0 when none is.
	Version uint `json:"version"`
	// Latest is the newest version in the set.
	Latest uint `json:"latest"`
	// Pending counts the versions not applied yet.
	Pending int `json:"pending"`
	// Dirty reports a migration that failed half-way and needs a hand.
	Dirty bool `json:"dirty"`
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func (m Migrations) table() string {
	if m.Table != "" {
		return m.Table
	}
	return "schema_migrations_" + m.Name
}

func (m Migrations) validate() error {
	if m.Name == "" || m.FS == nil {
		return errors.New("migration set needs a name and a file system")
	}
	if !tableName.MatchString(m.table()) {
		return fmt.Errorf("migration set %q: version table %q is not a plain lower-case identifier", m.Name, m.table())
	}
	return nil
}

// versions lists the versions the set holds for dialect d, ascending.
func (m Migrations) versions(d Dialect) ([]uint, error) {
	entries, err := fs.ReadDir(m.FS, string(d))
	if err != nil {
		return nil, fmt.Errorf("migration set %q: %w", m.Name, err)
	}
	seen := map[uint]bool{}
	var out []uint
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".up.sql") {
			continue
		}
		i := strings.IndexByte(name, '_')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseUint(name[:i], 10, 64)
		if err != nil {
			continue
		}
		if !seen[uint(v)] {
			seen[uint(v)] = true
			out = append(out, uint(v))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// newMigrate builds a migrate instance on its own pool; Close on the result
// closes that pool.
func (m Migrations) newMigrate(dsn string) (*migrate.Migrate, DSN, error) {
	if err := m.validate(); err != nil {
		return nil, DSN{}, err
	}
	d, err := ParseDSN(dsn)
	if err != nil {
		return nil, d, err
	}
	if d.Dialect == Postgres && d.Schema != "" {
		if err := ensureSchema(context.Background(), d); err != nil {
			return nil, d, err
		}
	}
	sub, err := fs.Sub(m.FS, string(d.Dialect))
	if err != nil {
		return nil, d, fmt.Errorf("migration set %q: %w", m.Name, err)
	}
	src, err := iofs.New(sub, ".")
	if err != nil {
		return nil, d, fmt.Errorf("migration set %q for %s: %w", m.Name, d.Dialect, err)
	}
	sqlDB, err := openSQL(d)
	if err != nil {
		return nil, d, fmt.Errorf("migrate %q on %s: %w", m.Name, d, err)
	}
	var drv database.Driver
	switch d.Dialect {
	case SQLite:
		drv, err = sqlite3.WithInstance(sqlDB, &sqlite3.Config{MigrationsTable: m.table()})
	default:
		drv, err = pgx.WithInstance(sqlDB, &pgx.Config{MigrationsTable: m.table()})
	}
	if err != nil {
		_ = sqlDB.Close()
		return nil, d, fmt.Errorf("migrate %q on %s: %w", m.Name, d, err)
	}
	mg, err := migrate.NewWithInstance("iofs", src, string(d.Dialect), drv)
	if err != nil {
		_ = drv.Close()
		return nil, d, fmt.Errorf("migrate %q on %s: %w", m.Name, d, err)
	}
	return mg, d, nil
}

// migrateLocks serialises migrations per DSN within the process. Two
// components of one process (the monolith and the relay in `strangler up`)
// may migrate the same set at once; golang-migrate's SQLite driver locks
// only within one driver instance, so the second would try to create the
// tables again. Postgres is guarded across processes by the driver's
// advisory lock.
var migrateLocks sync.Map

func lockMigrations(dsn string) func() {
	v, _ := migrateLocks.LoadOrStore(dsn, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// MigrateUp applies every pending migration of each set, in order.
func MigrateUp(ctx context.Context, dsn string, sets ...Migrations) error {
	defer lockMigrations(dsn)()
	for _, m := range sets {
		if err := ctx.Err(); err != nil {
			return err
		}
		mg, d, err := m.newMigrate(dsn)
		if err != nil {
			return err
		}
		err = mg.Up()
		closeMigrate(mg)
		if err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return fmt.Errorf("migrate %q up on %s: %w", m.Name, d, err)
		}
	}
	return nil
}

// MigrateDown rolls back steps migrations of each set, taking the sets in
// reverse order; steps <= 0 rolls back all of them.
func MigrateDown(ctx context.Context, dsn string, steps int, sets ...Migrations) error {
	defer lockMigrations(dsn)()
	for i := len(sets) - 1; i >= 0; i-- {
		m := sets[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		mg, d, err := m.newMigrate(dsn)
		if err != nil {
			return err
		}
		if steps > 0 {
			err = mg.Steps(-steps)
		} else {
			err = mg.Down()
		}
		closeMigrate(mg)
		if err != nil && !errors.Is(err, migrate.ErrNoChange) && !isNoMoreSteps(err) {
			return fmt.Errorf("migrate %q down on %s: %w", m.Name, d, err)
		}
	}
	return nil
}

// isNoMoreSteps reports migrate's error for stepping below version 0, which
// for a partly applied set just means there was less to undo.
func isNoMoreSteps(err error) bool {
	var short migrate.ErrShortLimit
	return errors.As(err, &short) || errors.Is(err, fs.ErrNotExist)
}

// MigrateStatus reports each set's applied and latest versions.
func MigrateStatus(ctx context.Context, dsn string, sets ...Migrations) ([]Status, error) {
	out := make([]Status, 0, len(sets))
	for _, m := range sets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mg, d, err := m.newMigrate(dsn)
		if err != nil {
			return nil, err
		}
		v, dirty, err := mg.Version()
		closeMigrate(mg)
		if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
			return nil, fmt.Errorf("migration status %q on %s: %w", m.Name, d, err)
		}
		all, err := m.versions(d.Dialect)
		if err != nil {
			return nil, err
		}
		st := Status{Name: m.Name, Table: m.table(), Version: v, Dirty: dirty}
		for _, av := range all {
			if av > v {
				st.Pending++
			}
		}
		if len(all) > 0 {
			st.Latest = all[len(all)-1]
		}
		out = append(out, st)
	}
	return out, nil
}

func closeMigrate(mg *migrate.Migrate) {
	// Close returns the source and database errors, neither of which matters
	// once the migration's own result is known.
	_, _ = mg.Close()
}
