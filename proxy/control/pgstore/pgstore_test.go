package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
	"github.com/stranglerkit/strangler/proxy/control/storetest"
)

// openStore opens a store on dsn for the test and closes it when the test
// ends.
func openStore(t *testing.T, dsn string, opt pgstore.Options) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn, opt)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) control.Store {
		return openStore(t, dbtest.PostgresDSN(t), pgstore.Options{})
	})
}

// TestAuditPagesJoin pages through a log longer than a batch, with a
// limit around the batch size, and for a module with a few entries among
// many table-wide ones that do not touch it, so that a page reads several
// batches: the pages join up, none is over its limit, and they end.
func TestAuditPagesJoin(t *testing.T) {
	s := openStore(t, dbtest.PostgresDSN(t), pgstore.Options{})
	ctx := context.Background()
	const n = 1300
	entries := make([]api.AuditEntry, n)
	var want, wantRare []int64
	for i := range entries {
		v := int64(i + 1)
		entries[i] = api.AuditEntry{Time: time.Unix(v, 0).UTC(), Actor: "op", Action: "replace", Version: v}
		if v%600 == 7 {
			entries[i].Module, entries[i].Action = "rare", "flip"
		}
	}
	for v := int64(n); v >= 1; v-- {
		want = append(want, v)
		if v%600 == 7 {
			wantRare = append(wantRare, v)
		}
	}
	for _, e := range entries {
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		module string
		limit  int
		want   []int64
	}{
		{"", 500, want},
		{"", 499, want},
		{"", 1300, want},
		{"rare", 1, wantRare},
		{"rare", 2, wantRare},
	} {
		t.Run(fmt.Sprintf("module %q limit %d", tc.module, tc.limit), func(t *testing.T) {
			got := storetest.AuditVersions(t, s, tc.module, tc.limit, n)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("pages hold %d versions, want %d (%v…)", len(got), len(tc.want), got[:min(len(got), 5)])
			}
		})
	}
}

// TestHistoryKeepsTheNewest saves more revisions than the history keeps:
// it holds the newest KeepHistory of them (by default many more), while
// the audit log stays whole.
func TestHistoryKeepsTheNewest(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep int
		want string
	}{
		{"keep 3", 3, "[7 6 5]"},
		{"keep 1", 1, "[7]"},
		{"default", 0, "[7 6 5 4 3 2 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, dbtest.PostgresDSN(t), pgstore.Options{KeepHistory: tc.keep})
			ctx := context.Background()
			st := &control.State{}
			for v := int64(1); v <= 7; v++ {
				st.Version = v
				if err := s.Save(ctx, st); err != nil {
					t.Fatal(err)
				}
				if err := s.AppendAudit(ctx, api.AuditEntry{Time: time.Unix(v, 0).UTC(), Actor: "op", Action: "replace", Version: v}); err != nil {
					t.Fatal(err)
				}
			}
			hist, err := s.History(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range hist {
				got = append(got, r.State.Revision)
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("history holds revisions %v, want %s", got, tc.want)
			}
			if audit := storetest.AuditVersions(t, s, "", 100, 7); fmt.Sprint(audit) != "[7 6 5 4 3 2 1]" {
				t.Fatalf("audit holds versions %v, want all 7", audit)
			}
		})
	}
}
