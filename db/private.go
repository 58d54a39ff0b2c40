package db

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/stranglerkit/strangler/internal/private"
)

// prepareSQLiteFile makes the SQLite file at path private before SQLite
// opens it: its directory is created with mode 0700 when missing, the file
// is created with mode 0600 when missing, and an existing file, -wal or
// -shm loses the group and other permissions it has. SQLite gives the -wal
// and -shm files it creates the mode of the database file, so they follow.
// An existing directory is left as it is: it may be the working directory.
func prepareSQLiteFile(path string) error {
	if err := private.MkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, private.File)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := private.Restrict(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
