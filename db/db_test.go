package db_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

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
		{"postgres://u@h/db?sslmode=require&sslpassword=secret", "postgres://u@h/db?sslmode=require&sslpassword=xxxxx"},
		// url.ParseQuery drops a part it cannot unescape.
		{"postgres://u@h/db?password=sec%zzret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u:secret@h:5432/db?password=secret%zz&x=1", "postgres://u:xxxxx@h:5432/db?password=xxxxx&x=1"},
		// Unparsable URLs.
		{"postgres://u:secret@h b/db?password=secret", "postgres://xxxxx@h b/db?password=xxxxx"},
		// libpq keyword/value DSNs.
		{"host=db user=u password=secret dbname=x", "host=db user=u password=xxxxx dbname=x"},
		{"host=db password = secret", "host=db password = xxxxx"},
		{"password='se cret' host=db", "password=xxxxx host=db"},
		{`host=db password='it\'s secret' dbname=x`, "host=db password=xxxxx dbname=x"},
		{"host=db password='secret unterminated", "host=db password=xxxxx"},
		{"host=db\tPASSWORD=secret sslpassword=secret", "host=db\tPASSWORD=xxxxx sslpassword=xxxxx"},
		{"host=db user=u", "host=db user=u"},
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

// TestParseDSNErrorsHideThePassword feeds ParseDSN DSNs that fail
// validation, and checks that the error names the DSN without its password.
func TestParseDSNErrorsHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"host=db user=u password=secret dbname=x",
		"host=db password='se cret'",
		"mysql://root:secret@localhost/test",
		"postgres://u:secret@/test",
		"postgres://u:secret@h/test?search_path=a,b&password=secret",
		"postgres://u:secret@h b/test",
		"postgres://u@h/test?password=secret%zz&search_path=a,b",
	} {
		_, err := db.ParseDSN(dsn)
		if err == nil {
			t.Fatalf("ParseDSN(%q) passed, want an error", dsn)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "se cret") {
			t.Errorf("ParseDSN(%q) error leaks the password: %v", dsn, err)
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
		gdb := openWidgets(t, dsn)
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
		err := db.Transact(ctx, gdb, func(ctx context.Context) error {
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

// TestOpenErrorsHideThePassword opens DSNs that pass ParseDSN but fail in
// the driver (a parameter pgx cannot read, a server that refuses the
// connection or the password), and checks that no error repeats the
// password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	dsns := []string{
		"postgres://u:secret@127.0.0.1:1/test?sslmode=disable",
		"postgres://u:secret@127.0.0.1:1/test?connect_timeout=soon",
		"postgres://u@127.0.0.1:1/test?sslmode=disable&password=secret",
		"postgres://u:secret@127.0.0.1:1/test?search_path=svc&sslmode=disable",
	}
	for _, dsn := range dsns {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		gdb, err := db.Open(ctx, dsn, db.Options{})
		cancel()
		if err == nil {
			_ = db.Close(gdb)
			t.Fatalf("Open(%q) passed, want an error", db.Redact(dsn))
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error leaks the password: %v", db.Redact(dsn), err)
		}
	}
	for _, dsn := range dsns {
		if err := db.MigrateUp(context.Background(), dsn, widgets); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("MigrateUp(%q) error = %v, want one without the password", db.Redact(dsn), err)
		}
	}
}

// openWidgets migrates the widgets set into dsn and opens it, closed when
// the test ends.
func openWidgets(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	if err := db.MigrateUp(ctx, dsn, widgets); err != nil {
		t.Fatal(err)
	}
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(gdb) })
	return gdb
}
