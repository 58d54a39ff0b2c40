package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestBatch queues rows in a transaction's batches and checks that they are
// written in one flush per batch just before the commit, in the order
// added, and not at all when the transaction rolls back or has none.
func TestBatch(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		gdb := openWidgets(t, dsn)
		var flushes [][]string
		names := &db.Batch[string]{Flush: func(ctx context.Context, rows []string) error {
			flushes = append(flushes, rows)
			for _, r := range rows {
				if r == "bad" {
					return errors.New("a bad row")
				}
				if err := db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES (?)", r).Error; err != nil {
					return err
				}
			}
			return nil
		}}
		// follow queues a name in names for each row it flushes: a flush
		// that queues rows in another batch, which the commit writes too.
		follow := &db.Batch[string]{Flush: func(ctx context.Context, rows []string) error {
			for _, r := range rows {
				if err := names.Add(ctx, "after-"+r); err != nil {
					return err
				}
			}
			return nil
		}}
		stored := func(t *testing.T) []string {
			var out []string
			if err := gdb.Raw("SELECT name FROM widgets ORDER BY id").Scan(&out).Error; err != nil {
				t.Fatal(err)
			}
			if err := gdb.Exec("DELETE FROM widgets").Error; err != nil {
				t.Fatal(err)
			}
			return out
		}
		boom := errors.New("boom")
		for _, tc := range []struct {
			name        string
			fn          func(ctx context.Context) error
			wantErr     error
			wantFlushes int
			want        []string
		}{
			{name: "commit writes in one flush, in order", fn: func(ctx context.Context) error {
				if err := names.Add(ctx, "a", "b"); err != nil {
					return err
				}
				var seen int64
				if err := db.Conn(ctx, gdb).Raw("SELECT COUNT(*) FROM widgets").Scan(&seen).Error; err != nil || seen != 0 {
					return fmt.Errorf("before the commit the table has %d rows (%v), want 0", seen, err)
				}
				return db.Transact(ctx, gdb, func(ctx context.Context) error { return names.Add(ctx, "c") })
			}, wantFlushes: 1, want: []string{"a", "b", "c"}},
			{name: "rollback writes nothing", fn: func(ctx context.Context) error {
				if err := names.Add(ctx, "x"); err != nil {
					return err
				}
				return boom
			}, wantErr: boom},
			{name: "a failed flush rolls back", fn: func(ctx context.Context) error {
				if err := db.Conn(ctx, gdb).Exec("INSERT INTO widgets (name) VALUES ('direct')").Error; err != nil {
					return err
				}
				return names.Add(ctx, "ok", "bad")
			}, wantFlushes: 1},
			{name: "a flush may queue more", fn: func(ctx context.Context) error {
				// names flushes first, then follow queues in names again.
				if err := names.Add(ctx, "n"); err != nil {
					return err
				}
				return follow.Add(ctx, "f")
			}, wantFlushes: 2, want: []string{"n", "after-f"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				flushes = nil
				err := db.Transact(ctx, gdb, tc.fn)
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && (err == nil) != (tc.want != nil) {
					t.Fatalf("Transact = %v", err)
				}
				if len(flushes) != tc.wantFlushes {
					t.Errorf("flushes %q, want %d", flushes, tc.wantFlushes)
				}
				if got := stored(t); strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("stored %q, want %q", got, tc.want)
				}
			})
		}
		if err := names.Add(ctx, "outside"); !errors.Is(err, db.ErrNoTransaction) {
			t.Errorf("Add outside a transaction = %v, want ErrNoTransaction", err)
		}
	})
}
