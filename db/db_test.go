package db_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in      string
		dialect db.Dialect
		path    string
		schema  string
		wantErr string
	}{
		{in: "sqlite:./.strangler/monolith.db", dialect: db.SQLite, path: ".strangler/monolith.db"},
		{in: "sqlite:///tmp/x.db", dialect: db.SQLite, path: "/tmp/x.db"},
		{in: "sqlite:", wantErr: "a file path must follow"},
		{in: "sqlite:x.db?_fk=1", wantErr: "take no parameters"},
		{in: "postgres://u:secret@127.0.0.1:5432/test?sslmode=disable", dialect: db.Postgres},
		{in: "postgresql://127.0.0.1/test?search_path=inventory_svc", dialect: db.Postgres, schema: "inventory_svc"},
		{in: "postgres://127.0.0.1/test?search_path=a,b", wantErr: "single schema"},
		{in: "postgres:///test", wantErr: "missing host"},
		{in: "mysql://root@localhost/test", wantErr: "want sqlite:PATH or postgres://URL"},
		{in: "", wantErr: "want sqlite:PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := db.ParseDSN(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, db.ErrBadDSN) {
					t.Fatalf("ParseDSN(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDSN(%q): %v", tt.in, err)
			}
			if d.Dialect != tt.dialect || d.Path != tt.path || d.Schema != tt.schema {
				t.Fatalf("ParseDSN(%q) = %+v", tt.in, d)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://h/db", "postgres://h/db"},
		{"sqlite:/tmp/a.db", "sqlite:/tmp/a.db"},
	}
	for _, tt := range tests {
		if got := db.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(db.Redact(tt.in), "secret") {
			t.Errorf("Redact(%q) leaks the secret", tt.in)
		}
	}
}

var widgets = db.Migrations{Name: "widgets", FS: os.DirFS("testdata/migrations")}

func TestMigrations(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st, err := db.MigrateStatus(ctx, dsn, widgets)
		if err != nil {
			t.Fatal(err)
		}
		if want := (db.Status{Name: "widgets", Table: "schema_migrations_widgets", Version: 0, Latest: 2, Pending: 2}); st[0] != want {
			t.Fatalf("status before = %+v, want %+v", st[0], want)
		}
		if err := db.MigrateUp(ctx, dsn, widgets); err != nil {
			t.Fatal(err)
		}
		// A second run has nothing to do and is not an error.
		if err := db.MigrateUp(ctx, dsn, widgets); err != nil {
			t.Fatal(err)
		}
		st, _ = db.MigrateStatus(ctx, dsn, widgets)
		if st[0].Version != 2 || st[0].Pending != 0 || st[0].Dirty {
			t.Fatalf("status after up = %+v", st[0])
		}
		gdb, err := db.Open(ctx, dsn, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(gdb)
		if err := gdb.Exec("INSERT INTO widgets (name) VALUES ('a')").Error; err != nil {
			t.Fatal(err)
		}
		var colour string
		if err := gdb.Raw("SELECT colour FROM widgets WHERE name = 'a'").Scan(&colour).Error; err != nil || colour != "red" {
			t.Fatalf("colour = %q, %v", colour, err)
		}
		// A second set keeps its own version table.
		other := db.Migrations{Name: "other", FS: os.DirFS("testdata/migrations"), Table: "schema_migrations_other"}
		st, _ = db.MigrateStatus(ctx, dsn, other)
		if st[0].Version != 0 {
			t.Fatalf("other set shares the version table: %+v", st[0])
		}
		if err := db.MigrateDown(ctx, dsn, 1, widgets); err != nil {
			t.Fatal(err)
		}
		st, _ = db.MigrateStatus(ctx, dsn, widgets)
		if st[0].Version != 1 || st[0].Pending != 1 {
			t.Fatalf("status after down 1 = %+v", st[0])
		}
		if err := db.MigrateDown(ctx, dsn, 0, widgets); err != nil {
			t.Fatal(err)
		}
		st, _ = db.MigrateStatus(ctx, dsn, widgets)
		if st[0].Version != 0 || st[0].Pending != 2 {
			t.Fatalf("status after down all = %+v", st[0])
		}
	})
}

func TestMigrationsIntoSchema(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	if strings.Contains(dsn, "?") {
		dsn += "&search_path=svc_widgets"
	} else {
		dsn += "?search_path=svc_widgets"
	}
	ctx := context.Background()
	if err := db.MigrateUp(ctx, dsn, widgets); err != nil {
		t.Fatal(err)
	}
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(gdb)
	var schema string
	if err := gdb.Raw("SELECT table_schema FROM information_schema.tables WHERE table_name = 'widgets'").Scan(&schema).Error; err != nil {
		t.Fatal(err)
	}
	if schema != "svc_widgets" {
		t.Fatalf("widgets created in schema %q, want svc_widgets", schema)
	}
}

func TestTransact(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		if err := db.MigrateUp(ctx, dsn, widgets); err != nil {
			t.Fatal(err)
		}
		gdb, err := db.Open(ctx, dsn, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(gdb)
		insert := func(ctx context.Context, name string) error {
			return db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES (?)", name).Error
		}
		count := func() int64 {
			var n int64
			if err := gdb.Raw("SELECT COUNT(*) FROM widgets").Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		// An inner Transact joins the outer one: a failure after it rolls
		// back both inserts.
		boom := errors.New("boom")
		err = db.Transact(ctx, gdb, func(ctx context.Context) error {
			if err := insert(ctx, "outer"); err != nil {
				return err
			}
			if err := db.Transact(ctx, gdb, func(ctx context.Context) error { return insert(ctx, "inner") }); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transact = %v, want boom", err)
		}
		if n := count(); n != 0 {
			t.Fatalf("rows after rollback = %d, want 0", n)
		}
		// Concurrent write transactions all commit.
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.Transact(ctx, gdb, func(ctx context.Context) error {
					var n int64
					if err := db.Conn(ctx, gdb).Raw("SELECT COUNT(*) FROM widgets").Scan(&n).Error; err != nil {
						return err
					}
					return insert(ctx, "w"+strings.Repeat("x", i))
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := count(); n != 40 {
			t.Fatalf("rows = %d, want 40", n)
		}
	})
}
