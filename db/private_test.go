package db_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/internal/private"
)

// TestSQLiteFilesArePrivate opens SQLite databases, new and left at 0644 by
// an older version, writes to them so that the -wal and -shm files exist,
// and checks that the files are 0600 and a created directory 0700: they
// hold customer data.
func TestSQLiteFilesArePrivate(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
	}{
		{name: "new file in a new directory"},
		{name: "existing 0644 files", prepare: func(t *testing.T, path string) {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data", "sub")
			path := filepath.Join(dir, "shop.db")
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			if err := db.MigrateUp(context.Background(), "sqlite:"+path, widgets); err != nil {
				t.Fatal(err)
			}
			gdb, err := db.Open(context.Background(), "sqlite:"+path, db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close(gdb)
			if err := gdb.Exec(`INSERT INTO widgets (name) VALUES ('a')`).Error; err != nil {
				t.Fatal(err)
			}
			want := map[string]os.FileMode{
				path: private.File, path + "-wal": private.File, path + "-shm": private.File,
				dir: private.Dir, filepath.Dir(dir): private.Dir,
			}
			for p, mode := range want {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("stat: %v", err)
				}
				if fi.Mode().Perm() != mode {
					t.Errorf("%s: mode %v, want %v", filepath.Base(p), fi.Mode().Perm(), mode)
				}
			}
		})
	}
}

// TestReopenKeepsSQLiteLocks opens the same SQLite file again and again
// while this process and another one write to it, as `up` does when its
// relay opens the monolith's database while `strangler verify` or a tool
// writes from outside. Closing any descriptor of a file drops every POSIX
// lock the process holds on it, so preparing the file by opening and
// closing it under a live handle let the other process write at the same
// time and corrupted the database ("database disk image is malformed").
func TestReopenKeepsSQLiteLocks(t *testing.T) {
	if path := os.Getenv(sqliteWriterEnv); path != "" {
		// The other process opens and closes its handle over and over: the
		// last handle to close checkpoints and removes the WAL, which is
		// safe only when the locks of every other open handle are intact.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !t.Failed(); {
			writeFor(t, "sqlite://"+path, 20*time.Millisecond)
		}
		return
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shop.db")
	dsn := "sqlite://" + path
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(gdb)
	if err := gdb.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").Error; err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestReopenKeepsSQLiteLocks$", "-test.count=1")
	child.Env = append(os.Environ(), sqliteWriterEnv+"="+path)
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeFor(t, dsn, 3*time.Second)
	}()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		h, err := db.Open(ctx, dsn, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Close(h)
	}
	<-done
	if err := child.Wait(); err != nil {
		t.Fatalf("the other process's writes failed: %v\n%s", err, out.String())
	}
	var check string
	if err := gdb.Raw("PRAGMA integrity_check").Scan(&check).Error; err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
}

// sqliteWriterEnv tells the test binary, run again as a child, to write to
// the SQLite file it names.
const sqliteWriterEnv = "STRANGLER_TEST_SQLITE_WRITER"

// writeFor inserts rows into t at dsn, one transaction each, for d.
func writeFor(t *testing.T, dsn string, d time.Duration) {
	t.Helper()
	h, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Error(err)
		return
	}
	defer db.Close(h)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if err := h.Exec("INSERT INTO t (v) VALUES (?)", strings.Repeat("x", 512)).Error; err != nil {
			t.Errorf("insert: %v", err)
			return
		}
	}
}
