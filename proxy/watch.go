package proxy

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watch reloads the routes file when it changes on disk. It watches the
// directory, since editors and config managers replace files by renaming
// a new one over them, and waits for changes to settle before reading.
// Any change in the directory rereads the file, not only one that names
// it: a Kubernetes ConfigMap volume updates the file, a symlink, by
// swapping the ..data link it points through. A reread that finds the same
// bytes changes nothing.
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				timer.Reset(settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			p.log.Warn("routes file watcher", "error", err)
		case <-timer.C:
			_ = p.reloadFile() // logged and counted inside
		}
	}
}
