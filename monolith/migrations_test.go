package monolith_test

import (
	"context"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/internal/moddoc"
)

// migrationFiles lists a dialect's files of a set as "version_name.up"
// and "version_name.down".
func migrationFiles(t *testing.T, set db.Migrations, d db.Dialect) []string {
	t.Helper()
	entries, err := fs.ReadDir(set.FS, string(d))
	if err != nil {
		t.Fatalf("set %s: %v", set.Name, err)
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			t.Errorf("set %s/%s: %s is not an SQL migration", set.Name, d, e.Name())
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func TestMigrationSetsMatchAcrossDialects(t *testing.T) {
	sets := monolith.ModuleMigrations()
	if len(sets) != len(monolith.Dependencies) {
		t.Fatalf("%d migration sets for %d modules", len(sets), len(monolith.Dependencies))
	}
	owner := map[string]string{}
	for _, set := range sets {
		if _, ok := monolith.Dependencies[set.Name]; !ok {
			t.Errorf("set %s is named after no module", set.Name)
		}
		lite, pg := migrationFiles(t, set, db.SQLite), migrationFiles(t, set, db.Postgres)
		if !slices.Equal(lite, pg) {
			t.Errorf("set %s: sqlite has %v, postgres has %v", set.Name, lite, pg)
		}
		for _, f := range pg {
			base, _ := strings.CutSuffix(f, ".up")
			if base != f && !slices.Contains(pg, base+".down") {
				t.Errorf("set %s: %s has no down migration", set.Name, f)
			}
		}
		ls, err := moddoc.Read(set, db.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := moddoc.Read(set, db.Postgres)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ls.Tables, ps.Tables) || !slices.Equal(ls.References, ps.References) {
			t.Errorf("set %s: sqlite leaves %+v, postgres %+v", set.Name, ls, ps)
		}
		if len(ps.Tables) == 0 {
			t.Errorf("set %s creates no table", set.Name)
		}
		for _, table := range ps.Tables {
			if prev, taken := owner[table]; taken {
				t.Errorf("table %s is created by both %s and %s", table, prev, set.Name)
			}
			owner[table] = set.Name
		}
		// A foreign key into another module's table would tie the two
		// schemas together, and the module could not move out alone.
		for _, ref := range ps.References {
			if !slices.Contains(ps.Tables, ref) {
				t.Errorf("set %s has a foreign key to %s, a table it does not own", set.Name, ref)
			}
		}
	}
}

// tablesIn lists the tables of the connected database's default schema.
func tablesIn(t *testing.T, dsn string) []string {
	t.Helper()
	gdb, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(gdb)
	q := "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
	if db.DialectOf(gdb) == db.SQLite {
		q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
	}
	var names []string
	if err := gdb.Raw(q).Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrationsUpDownUp(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		sets := monolith.Migrations()
		var moduleTables []string
		for _, set := range sets {
			s, err := moddoc.Read(set, db.Postgres)
			if err != nil {
				t.Fatal(err)
			}
			moduleTables = append(moduleTables, s.Tables...)
		}
		checkUp := func(round string) {
			t.Helper()
			st, err := db.MigrateStatus(ctx, dsn, sets...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st {
				if s.Version != s.Latest || s.Pending != 0 || s.Dirty || s.Table != "schema_migrations_"+s.Name {
					t.Errorf("%s: set %+v is not fully applied", round, s)
				}
			}
			have := tablesIn(t, dsn)
			for _, table := range moduleTables {
				if !slices.Contains(have, table) {
					t.Errorf("%s: table %s missing; have %v", round, table, have)
				}
			}
		}
		if err := db.MigrateUp(ctx, dsn, sets...); err != nil {
			t.Fatal(err)
		}
		checkUp("first up")
		if err := db.MigrateDown(ctx, dsn, 0, sets...); err != nil {
			t.Fatal(err)
		}
		have := tablesIn(t, dsn)
		for _, table := range moduleTables {
			if slices.Contains(have, table) {
				t.Errorf("table %s survived down; have %v", table, have)
			}
		}
		st, err := db.MigrateStatus(ctx, dsn, sets...)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if s.Version != 0 || s.Pending == 0 {
				t.Errorf("after down, set %+v", s)
			}
		}
		if err := db.MigrateUp(ctx, dsn, sets...); err != nil {
			t.Fatal(err)
		}
		checkUp("second up")
		// The migrated schema works: seeding goes through every module.
		gdb, err := db.Open(ctx, dsn, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(gdb)
		if err := monolith.Seed(ctx, gdb); err != nil {
			t.Fatal(err)
		}
	})
}
