package proxy

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch reloads the routes file when it changes on disk. It watches the
// directory, since editors and config managers replace files by renaming
// a new one over them, and waits for changes to settle before reading.
// A change that names the file rereads it, and so does one that names a
// "..*" entry: a Kubernetes ConfigMap volume updates the file, a symlink,
// by swapping the ..data link it points through. Other files in the
// directory (state, audit, an access log) are ignored: their writes would
// otherwise keep the file from ever settling. The settle delay runs from
// the first change, not the last, for the same reason. A reread that finds
// the same bytes changes nothing.
func (p *Proxy) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch routes file: %w", err)
	}
	defer w.Close()
	file, err := filepath.Abs(p.cfg.RoutesFile)
	if err != nil {
		return fmt.Errorf("watch routes file: %w", err)
	}
	if err := w.Add(filepath.Dir(file)); err != nil {
		return fmt.Errorf("watch routes file: %w", err)
	}
	const settle = 150 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 && !pending && concerns(file, ev.Name) {
				pending = true
				timer.Reset(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			p.log.Warn("routes file watcher", "error", err)
		case <-timer.C:
			pending = false
			_ = p.reloadFile() // logged and counted inside
		}
	}
}

// concerns reports whether a change to name, in the routes file's
// directory, may change what file reads as.
func concerns(file, name string) bool {
	return filepath.Clean(name) == file || strings.HasPrefix(filepath.Base(name), "..")
}
