package servicekit_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/httpx"
)

// TestRunConsumerOnOutlastsStartFailures starts a back sync on a
// monolith's database that cannot be opened yet (a file stands where its
// directory goes, as a database cannot be opened when the process has no
// descriptors left): it
// keeps trying rather than returning the error, which would end the
// service and every component of `strangler up`, starts once the database
// can be opened, and returns nil when its context ends.
func TestRunConsumerOnOutlastsStartFailures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	dsn := "sqlite:" + filepath.Join(dir, "monolith.db")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- servicekit.RunConsumerOn(ctx, dsn,
			func(string) consumer.Config {
				return consumer.Config{Name: "back-sync-test", Topics: []string{"test.order"}}
			},
			func(*consumer.Consumer, *gorm.DB) {},
			consumer.Options{Brokers: []string{"127.0.0.1:1"}, Logger: httpx.Discard})
	}()
	select {
	case err := <-done:
		t.Fatalf("the back sync returned while its database could not be opened: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if migrated(t, dsn) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the back sync did not start within 30s of its database becoming available")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the back sync ended with %v when its context ended, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the back sync did not stop within 30s of its context ending")
	}
}

// migrated reports whether the consumer's inbox table is in the database
// at dsn, which it migrates as it starts.
func migrated(t *testing.T, dsn string) bool {
	t.Helper()
	if _, err := os.Stat(dsn[len("sqlite:"):]); err != nil {
		return false
	}
	gdb, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		return false
	}
	defer db.Close(gdb)
	return gdb.Migrator().HasTable("changefeed_inbox")
}
