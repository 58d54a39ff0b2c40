package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
)

// chaosDSN is dbtest.PostgresDSN for an attack: without a server it skips
// through chaostest, so that the skip is reported as an attack not made.
func chaosDSN(t *testing.T, tried string) string {
	t.Helper()
	if !dbtest.PostgresAvailable() && os.Getenv(dbtest.EnvRequirePostgres) != "1" {
		chaostest.Skipf(t, tried, "needs Postgres: %s is not set", dbtest.EnvPostgresDSN)
	}
	return dbtest.PostgresDSN(t)
}

// adminConn opens a plain connection to dsn for the test, to act on the
// database behind the stores' backs.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// listenerPIDs lists the backends of the listeners in the test's database,
// whose last query was the LISTEN.
func listenerPIDs(t *testing.T, admin *pgx.Conn) []int32 {
	t.Helper()
	rows, err := admin.Query(context.Background(), `SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1 AND query LIKE 'LISTEN%' ORDER BY pid`, pgstore.ListenerName)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// waitListener waits for a listener backend other than those in not.
func waitListener(t *testing.T, admin *pgx.Conn, not []int32) []int32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := listenerPIDs(t, admin)
		for _, p := range pids {
			if !contains(not, p) {
				return pids
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new listener within 30s (have %v, not %v)", pids, not)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(xs []int32, x int32) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// gotChanged reports whether ch delivers within 30s.
func gotChanged(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(30 * time.Second):
		return false
	}
}

// TestChaosListenerConnectionLoss kills the listener's backend, as a
// Postgres restart or a failover does, and saves through another store:
// the listener reconnects and delivers the save it may have missed. The
// store runs no poll, so the delivery is the reconnect's.
func TestChaosListenerConnectionLoss(t *testing.T) {
	dsn := chaosDSN(t, "pg_terminate_backend on a store's LISTEN connection")
	a, b := openStore(t, dsn, pgstore.Options{}), openStore(t, dsn, pgstore.Options{})
	admin := adminConn(t, dsn)
	ctx := context.Background()
	changed := b.Changed()
	pids := waitListener(t, admin, nil)
	st := &control.State{Version: 1}
	for _, tc := range []struct {
		name string
		// reconnected saves only once a new listener is up: the
		// notification's path rather than the revision check's.
		reconnected bool
	}{
		{"save while the listener is away", false},
		{"save after it reconnected", true},
		{"save while it is away, again", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var killed int
			if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1 AND query LIKE 'LISTEN%'`, pgstore.ListenerName).Scan(&killed); err != nil || killed == 0 {
				t.Fatalf("terminate the listener: %d killed, %v", killed, err)
			}
			if tc.reconnected {
				pids = waitListener(t, admin, pids)
			}
			st.Version++
			if err := a.Save(ctx, st); err != nil {
				t.Fatalf("save through a: %v", err)
			}
			ok := gotChanged(changed)
			chaostest.Report(t, ok, fmt.Sprintf("pg_terminate_backend on b's LISTEN connection, then a save through a (%s)", tc.name),
				"b's Changed delivers within 30s, without the poll", fmt.Sprintf("delivered: %v", ok))
			if !tc.reconnected {
				pids = waitListener(t, admin, pids)
			}
		})
	}
}

// TestChaosMissedNotification changes the stored state in ways that send
// no usable notification: the listener must look at the revision
// instead. (A writer that sends no notification at all is caught by the
// consumer's poll of Revision: proxy's TestChaosReplicaMissedNotification.)
func TestChaosMissedNotification(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write string
	}{
		{"a notification whose payload is not a revision",
			`WITH u AS (UPDATE control_state SET revision = revision + 1 RETURNING 1) SELECT pg_notify('strangler_control', 'not a revision') FROM u`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := chaosDSN(t, tc.name)
			a, b := openStore(t, dsn, pgstore.Options{}), openStore(t, dsn, pgstore.Options{})
			admin := adminConn(t, dsn)
			ctx := context.Background()
			if err := a.Save(ctx, &control.State{Version: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Load(ctx); err != nil {
				t.Fatal(err)
			}
			changed := b.Changed()
			waitListener(t, admin, nil)
			if _, err := admin.Exec(ctx, tc.write); err != nil {
				t.Fatal(err)
			}
			ok := gotChanged(changed)
			st, err := b.Load(ctx)
			ok = ok && err == nil && st.Revision == 2
			chaostest.Report(t, ok, tc.name, "b's Changed delivers and b loads revision 2",
				fmt.Sprintf("delivered and loaded %+v, %v", st, err))
		})
	}
}

// TestChaosHostileInput feeds the store what a bug or an attacker might:
// documents too large or corrupt, cancelled contexts, a closed store.
func TestChaosHostileInput(t *testing.T) {
	dsn := chaosDSN(t, "oversized, corrupt and cancelled input to the Postgres control store")
	ctx := context.Background()
	s := openStore(t, dsn, pgstore.Options{MaxDocument: 1 << 20})
	admin := adminConn(t, dsn)
	if err := s.Save(ctx, &control.State{Version: 1, UpdatedBy: "seed"}); err != nil {
		t.Fatal(err)
	}
	big := func(n int) *control.State {
		st, _ := s.Load(ctx)
		st.UpdatedBy = strings.Repeat("x", n)
		return st
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name  string
		try   func() error
		check func(error) bool
		want  string
	}{
		{"save of a 2 MiB state with a 1 MiB limit", func() error { return s.Save(ctx, big(2<<20)) },
			func(err error) bool { return errors.Is(err, pgstore.ErrTooLarge) },
			"ErrTooLarge, the stored state unchanged"},
		{"save of a 900 KiB state with a 1 MiB limit", func() error {
			st := big(900 << 10)
			if err := s.Save(ctx, st); err != nil {
				return err
			}
			got, err := s.Load(ctx)
			if err != nil || got.UpdatedBy != st.UpdatedBy {
				return fmt.Errorf("loaded back %d bytes, %v", len(got.UpdatedBy), err)
			}
			return nil
		}, func(err error) bool { return err == nil }, "saved and loaded back whole"},
		{"audit entry with invalid JSON in before", func() error {
			return s.AppendAudit(ctx, apiEntry(`{"unterminated`))
		}, func(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "pgstore: append audit:") },
			"an error with context, nothing stored"},
		{"load of a stored document that is not a state", func() error {
			if _, err := admin.Exec(ctx, `UPDATE control_state SET doc = '{"version":"seven"}'`); err != nil {
				return err
			}
			_, err := s.Load(ctx)
			return err
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "is corrupt") },
			"an error naming the corrupt revision"},
		{"load with a cancelled context", func() error { _, err := s.Load(cancelled); return err },
			func(err error) bool { return errors.Is(err, context.Canceled) }, "context.Canceled"},
		{"save with a cancelled context", func() error { return s.Save(cancelled, &control.State{}) },
			func(err error) bool { return errors.Is(err, context.Canceled) }, "context.Canceled"},
		{"register with a cancelled context", func() error {
			_, err := s.Register(cancelled, "orders", "http://127.0.0.1:1", time.Minute)
			return err
		}, func(err error) bool { return errors.Is(err, context.Canceled) }, "context.Canceled"},
		{"audit page with a cancelled context", func() error {
			_, err := s.Audit(cancelled, control.AuditQuery{Limit: 5})
			return err
		}, func(err error) bool { return errors.Is(err, context.Canceled) }, "context.Canceled"},
		{"audit page with limit 0", func() error { _, err := s.Audit(ctx, control.AuditQuery{}); return err },
			func(err error) bool { return err != nil }, "an error, no unbounded page"},
		{"close twice, then use", func() error {
			c := openStore(t, dsn, pgstore.Options{})
			ch := c.Changed()
			if err := c.Close(); err != nil {
				return err
			}
			if err := c.Close(); err != nil {
				return fmt.Errorf("second close: %w", err)
			}
			if c.Changed() != ch {
				return errors.New("Changed after Close returned another channel")
			}
			_, err := c.Load(ctx)
			return err
		}, func(err error) bool { return errors.Is(err, pgstore.ErrClosed) }, "both closes nil, then ErrClosed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.try()
			chaostest.Report(t, tc.check(err), tc.name, tc.want, fmt.Sprintf("%v", err))
		})
	}
	// The refused saves stored nothing: the newest revision is the 900 KiB
	// one, corrupted by hand above.
	var rev int64
	if err := admin.QueryRow(ctx, `SELECT revision FROM control_state`).Scan(&rev); err != nil || rev != 2 {
		t.Fatalf("stored revision %d, %v; want 2", rev, err)
	}
}

// TestOpenRefuses checks that Open fails with the DSN's password left
// out, on a DSN it cannot use.
func TestOpenRefuses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name, dsn string
		is        error
	}{
		{"sqlite", "sqlite:/tmp/x.db", db.ErrBadDSN},
		{"unreachable server", "postgres://u:s3cretpw@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", nil},
		{"not a DSN", "mysql://u:s3cretpw@h/db", db.ErrBadDSN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pgstore.Open(ctx, tc.dsn, pgstore.Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tc.name)
			}
			if strings.Contains(err.Error(), "s3cretpw") {
				t.Fatalf("the error shows the password: %v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Open = %v, want %v", err, tc.is)
			}
			if !strings.HasPrefix(err.Error(), "pgstore: ") {
				t.Fatalf("error without context: %v", err)
			}
		})
	}
}

func apiEntry(before string) api.AuditEntry {
	return api.AuditEntry{Actor: "op", Action: "flip", Before: json.RawMessage(before)}
}
