package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/private"
)

// dataModes lists the files under dir and the paths whose modes are
// looser than 0600 for a file or 0700 for a directory, the proxy's state
// (route table, audit log, admin token) included.
func dataModes(t *testing.T, dir string) (files map[string]bool, loose []string) {
	t.Helper()
	list, loose, err := private.Loose(dir)
	if err != nil {
		t.Fatal(err)
	}
	files = map[string]bool{}
	for _, f := range list {
		files[f] = true
	}
	return files, loose
}

// TestUpKeepsDataPrivate starts `strangler up` on a data dir it creates,
// and checks, while it runs and after it stops, that the SQLite files
// (with their -wal and -shm) and the broker's log are 0600 in 0700
// directories: they hold customer data, and were 0644 in 0755.
func TestUpKeepsDataPrivate(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	p := startUp(t, isolatedEnv(dataDir))
	waitReady(t, p.addrs["monolith"]+"/readyz")
	waitReady(t, p.addrs["inventory-service"]+"/readyz")

	// The seed's events reach the broker through the relay, which creates
	// the topics and their segments.
	needed := []string{"monolith.db", "monolith.db-wal", "monolith.db-shm", "inventory.db", "inventory.db-wal"}
	deadline := time.Now().Add(90 * time.Second)
	for {
		files, loose := dataModes(t, dataDir)
		var missing []string
		for _, f := range needed {
			if !files[f] {
				missing = append(missing, f)
			}
		}
		broker := 0
		for f := range files {
			if strings.HasPrefix(f, "broker"+string(filepath.Separator)) {
				broker++
			}
		}
		if len(missing) == 0 && broker > 0 && len(loose) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while up runs: missing %v, %d broker files, loose modes: %s", missing, broker, strings.Join(loose, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("up exited with %v; stderr:\n%s", err, p.stderr)
		}
	case <-ctx.Done():
		t.Fatal("up did not stop within 30s of SIGTERM")
	}
	if _, loose := dataModes(t, dataDir); len(loose) > 0 {
		t.Fatalf("after up stopped, loose modes: %s", strings.Join(loose, ", "))
	}
}
