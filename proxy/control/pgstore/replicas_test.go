package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
)

// waitChanged waits for a delivery on ch, failing the test after a
// generous bound.
func waitChanged(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no Changed delivery within 30s", what)
	}
}

// TestTwoStoresAgree runs two stores on one database, as two proxy
// replicas: each sees the other's saves through Changed, their saves
// conflict, and registrations and the audit log are shared.
func TestTwoStoresAgree(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	// The store runs no poll, so the deliveries measured are the
	// notifications'.
	a, b := openStore(t, dsn, pgstore.Options{}), openStore(t, dsn, pgstore.Options{})
	ctx := context.Background()

	t.Run("Changed", func(t *testing.T) {
		changed := b.Changed()
		st := &control.State{Version: 1, UpdatedBy: "a"}
		const saves = 200
		lat := make([]time.Duration, 0, saves)
		for i := 0; i < saves; i++ {
			st.Version = int64(i + 1)
			start := time.Now()
			if err := a.Save(ctx, st); err != nil {
				t.Fatalf("save %d: %v", i, err)
			}
			waitChanged(t, changed, fmt.Sprintf("save %d through a", i))
			lat = append(lat, time.Since(start))
			got, err := b.Load(ctx)
			if err != nil || got.Revision != st.Revision || got.Version != st.Version {
				t.Fatalf("b loads %+v, %v after a saved revision %d", got, err, st.Revision)
			}
		}
		slices.Sort(lat)
		t.Logf("save through a → b's Changed over %d saves: p50 %v, p99 %v, max %v",
			saves, lat[saves/2], lat[saves*99/100], lat[saves-1])
		// b's own save is not news to b.
		got, _ := b.Load(ctx)
		if err := b.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
			t.Fatal("b's Changed delivered b's own save")
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		sa, err := a.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		base := sb.Revision
		if err := a.Save(ctx, sa); err != nil {
			t.Fatalf("a's save: %v", err)
		}
		err = b.Save(ctx, sb)
		var ce *control.ConflictError
		if !errors.As(err, &ce) || ce.Base != base || ce.Stored != sa.Revision {
			t.Fatalf("b's save based on %d after a saved %d = %v, want a *ConflictError", base, sa.Revision, err)
		}
	})

	t.Run("Registrations", func(t *testing.T) {
		if created, err := a.Register(ctx, "orders", "http://127.0.0.1:9100", time.Hour); err != nil || !created {
			t.Fatalf("register through a = %v, %v", created, err)
		}
		// The heartbeat through the other replica renews, it does not
		// create.
		if created, err := b.Register(ctx, "orders", "http://127.0.0.1:9100", time.Hour); err != nil || created {
			t.Fatalf("renewal through b = %v, %v; want not created", created, err)
		}
		insts, err := b.Instances(ctx)
		if err != nil || len(insts["orders"]) != 1 || insts["orders"][0].URL != "http://127.0.0.1:9100" {
			t.Fatalf("b lists %+v, %v; want a's registration", insts, err)
		}
		if ok, err := b.Deregister(ctx, "orders", "http://127.0.0.1:9100"); err != nil || !ok {
			t.Fatalf("deregister through b = %v, %v", ok, err)
		}
		if insts, err := a.Instances(ctx); err != nil || len(insts) != 0 {
			t.Fatalf("a lists %+v, %v after b deregistered", insts, err)
		}
	})

	t.Run("AuditAndHistory", func(t *testing.T) {
		for i := 1; i <= 6; i++ {
			s := a
			if i%2 == 0 {
				s = b
			}
			if err := s.AppendAudit(ctx, api.AuditEntry{Time: time.Unix(int64(i), 0), Actor: "op", Action: "flip", Version: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for name, s := range map[string]*pgstore.Store{"a": a, "b": b} {
			page, err := s.Audit(ctx, control.AuditQuery{Limit: 10})
			var got []int64
			for _, e := range page.Entries {
				got = append(got, e.Version)
			}
			if err != nil || fmt.Sprint(got) != "[6 5 4 3 2 1]" {
				t.Fatalf("%s's audit = %v, %v; want both replicas' entries, newest first", name, got, err)
			}
		}
		// Every revision either saved is in the history, newest first.
		cur, _ := a.Load(ctx)
		hist, err := b.History(ctx, 0, 3)
		if err != nil || len(hist) != 3 || hist[0].State.Revision != cur.Revision || hist[2].State.Revision != cur.Revision-2 {
			t.Fatalf("b's history = %+v, %v; want revisions %d down", hist, err, cur.Revision)
		}
		older, err := a.History(ctx, hist[2].State.Revision, 1000)
		if err != nil || int64(len(older)) != cur.Revision-3 || older[len(older)-1].State.Revision != 1 {
			t.Fatalf("a's history before %d holds %d revisions, %v; want %d down to 1", hist[2].State.Revision, len(older), err, cur.Revision-3)
		}
	})
}

// TestReplicaReports has two replicas report through their own stores:
// each store lists both, a new report replaces the old, an expired one
// drops out, and bad reports are refused.
func TestReplicaReports(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	a, b := openStore(t, dsn, pgstore.Options{}), openStore(t, dsn, pgstore.Options{})
	ctx := context.Background()
	var rep control.ReplicaReporter = b // as a caller finds it on a control.Store
	if err := a.ReportReplica(ctx, control.ReplicaStatus{Replica: "proxy-a", Revision: 4, Version: 2, Detail: json.RawMessage(`{"shadow":{"diffs":3}}`)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := rep.ReportReplica(ctx, control.ReplicaStatus{Replica: "proxy-b", Revision: 3, Version: 2}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := rep.ReportReplica(ctx, control.ReplicaStatus{Replica: "proxy-b", Revision: 4, Version: 2}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.ReportReplica(ctx, control.ReplicaStatus{Replica: "proxy-gone", Revision: 1}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var got []control.ReplicaStatus
	for {
		var err error
		if got, err = rep.Replicas(ctx); err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 2 || got[0].Replica != "proxy-a" || got[1].Replica != "proxy-b" || got[1].Revision != 4 ||
		string(got[0].Detail) != `{"shadow":{"diffs":3}}` || got[1].Detail != nil || !got[0].ExpiresAt.After(got[0].ReportedAt) {
		t.Fatalf("Replicas = %+v; want proxy-a with its detail and proxy-b at revision 4, proxy-gone expired", got)
	}
	for _, tc := range []struct {
		name string
		st   control.ReplicaStatus
		ttl  time.Duration
	}{
		{"no name", control.ReplicaStatus{Revision: 1}, time.Minute},
		{"no ttl", control.ReplicaStatus{Replica: "p"}, 0},
		{"detail not JSON", control.ReplicaStatus{Replica: "p", Detail: json.RawMessage(`{"x":`)}, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.ReportReplica(ctx, tc.st, tc.ttl); err == nil {
				t.Fatalf("ReportReplica(%+v, %v) succeeded", tc.st, tc.ttl)
			}
		})
	}
}
