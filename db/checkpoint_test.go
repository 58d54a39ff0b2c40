package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestSQLiteConnectionsLeaveCheckpointsToTheBackground checks the pragmas
// of the connections that Open makes: a commit checkpoints the WAL itself
// only past the backstop of 10,000 pages, not at SQLite's 1,000, and the
// WAL is truncated to 64 MB when SQLite starts it over.
func TestSQLiteConnectionsLeaveCheckpointsToTheBackground(t *testing.T) {
	gdb := openWidgets(t, dbtest.SQLiteDSN(t))
	for _, tc := range []struct {
		pragma string
		want   int64
	}{
		{"wal_autocheckpoint", 10000},
		{"journal_size_limit", 64 << 20},
	} {
		var got int64
		if err := gdb.Raw("PRAGMA " + tc.pragma).Row().Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %d, want %d", tc.pragma, got, tc.want)
		}
	}
}

// TestSQLiteCheckpointsOffTheWriteLock commits CheckpointEvery write
// transactions on SQLite and checks that they start a checkpoint in the
// background, that further write transactions commit while it runs (it
// holds no write lock), and that Close waits for it.
func TestSQLiteCheckpointsOffTheWriteLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started, release, finished := make(chan struct{}, 8), make(chan struct{}), make(chan struct{}, 8)
	db.SetCheckpointHook(t, func() {
		started <- struct{}{}
		<-release
		finished <- struct{}{}
	})
	gdb := openWidgets(t, dbtest.SQLiteDSN(t))
	seq := 0
	insert := func(n int) {
		t.Helper()
		for i := range n {
			seq++
			err := db.Transact(ctx, gdb, func(ctx context.Context) error {
				return db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES (?)", fmt.Sprintf("w%d", seq)).Error
			})
			if err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
		}
	}
	insert(db.CheckpointEvery - 1)
	if len(started) != 0 {
		t.Fatalf("a checkpoint started after %d commits, want one after %d", db.CheckpointEvery-1, db.CheckpointEvery)
	}
	insert(1)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("no background checkpoint started after %d commits", db.CheckpointEvery)
	}
	// The checkpoint is held in its hook: commits go on, and start no
	// second one while it runs.
	insert(2 * db.CheckpointEvery)
	if len(started) != 0 {
		t.Fatalf("%d more checkpoints started while one ran, want none", len(started))
	}
	var n int64
	if err := gdb.Raw("SELECT COUNT(*) FROM widgets").Scan(&n).Error; err != nil || n != 3*db.CheckpointEvery {
		t.Fatalf("rows = %d (%v), want %d", n, err, 3*db.CheckpointEvery)
	}
	closed := make(chan error, 1)
	go func() { closed <- db.Close(gdb) }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if len(finished) != 1 {
		t.Fatalf("%d checkpoints finished before Close returned, want 1", len(finished))
	}
}
