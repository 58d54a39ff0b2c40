package changefeedtest

import (
	"context"
	"sync"
	"testing"

	"gorm.io/gorm"
)

// Go runs fn, a component's Run such as a relay's or a consumer's, in the
// background, and returns a function that cancels it and waits for it to
// return: a test kills the component with it. The test's cleanup stops it
// too. An error other than the cancellation fails the test.
func Go(t testing.TB, name string, fn func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// LockRelayRow starts a transaction that holds the row of relay group name
// in outbox_relay, as a stalled database would: on Postgres a row lock, on
// SQLite the write lock. A relay then publishes its next batch but cannot
// record it, so killing it leaves a published batch unrecorded. The caller
// rolls the transaction back.
func LockRelayRow(t testing.TB, gdb *gorm.DB, name string) *gorm.DB {
	t.Helper()
	tx := gdb.Begin()
	Must(t, tx.Error)
	if gdb.Dialector.Name() == "postgres" {
		Must(t, tx.Exec("SELECT 1 FROM outbox_relay WHERE name = ? FOR UPDATE", name).Error)
	} else {
		Must(t, tx.Exec("UPDATE outbox_relay SET updated_at = updated_at WHERE name = ?", name).Error)
	}
	return tx
}
