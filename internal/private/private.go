// Package private keeps Strangler's data files to their owner: SQLite
// databases and the broker's log hold customer data, so they get the modes
// of the proxy's admin token, not the world-readable defaults.
package private

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The modes of data.
const (
	// Dir is the mode of a directory that holds data.
	Dir fs.FileMode = 0o700
	// File is the mode of a data file.
	File fs.FileMode = 0o600
)

// MkdirAll creates dir and its missing parents with mode Dir.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, Dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// Restrict takes the group and other permissions off the file or directory
// at path, so that only its owner may use it. Symbolic links are left alone.
func Restrict(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&^0o077); err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	return nil
}

// RestrictTree restricts root and everything under it. A file that goes
// away while it walks (a temporary file renamed into place) is no error.
func RestrictTree(root string) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err == nil {
			err = Restrict(path)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
}

// Loose walks root and returns its files, as paths relative to root, and
// the entries whose modes allow more than File for a file or Dir for a
// directory, each with its mode. The directories named in skip (relative
// to root) are not walked. An entry that goes away during the walk is
// passed over.
func Loose(root string, skip ...string) (files, loose []string, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains(skip, rel) {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		want := File
		if d.IsDir() {
			want = Dir
		} else {
			files = append(files, rel)
		}
		if fi.Mode().Perm()&^want != 0 {
			loose = append(loose, fmt.Sprintf("%s %v", rel, fi.Mode().Perm()))
		}
		return nil
	})
	return files, loose, err
}
