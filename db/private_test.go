package db_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
