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
	// An existing file is never opened here: closing any descriptor of a
	// file drops every POSIX lock this process holds on it, and SQLite
	// handles already open in the process (the monolith's, when the relay
	// opens the same file) would lose theirs. Another process could then
	// checkpoint and remove the WAL under them. Only a file that did not
	// exist, which no handle can hold yet, is created and closed.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, private.File)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := private.Restrict(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
