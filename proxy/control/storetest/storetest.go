// Package storetest is the contract of a control.Store, as a test suite
// that every implementation runs: the embedded file store, and a shared
// one such as Postgres, against a fresh store each.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Run runs the contract against stores from open, which returns a new,
// empty store for each subtest and closes it when the test ends.
func Run(t *testing.T, open func(t *testing.T) control.Store) {
	t.Run("LoadEmpty", func(t *testing.T) { testLoadEmpty(t, open(t)) })
	t.Run("SaveLoad", func(t *testing.T) { testSaveLoad(t, open(t)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, open(t)) })
	t.Run("ConcurrentSaves", func(t *testing.T) { testConcurrentSaves(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open(t)) })
	t.Run("Registrations", func(t *testing.T) { testRegistrations(t, open(t)) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, open(t)) })
	t.Run("UsageBounded", func(t *testing.T) { testUsageBounded(t, open(t)) })
}

func testLoadEmpty(t *testing.T, s control.Store) {
	st, err := s.Load(context.Background())
	if err != nil || st != nil {
		t.Fatalf("Load of an empty store = %+v, %v; want nil, nil", st, err)
	}
	page, err := s.Audit(context.Background(), control.AuditQuery{Limit: 10})
	if err != nil || len(page.Entries) != 0 || page.Next != 0 {
		t.Fatalf("Audit of an empty store = %+v, %v; want no entries and no next page", page, err)
	}
	if insts, err := s.Instances(context.Background()); err != nil || len(insts) != 0 {
		t.Fatalf("Instances of an empty store = %v, %v", insts, err)
	}
}

func sampleState(version int64) *control.State {
	return &control.State{
		Version:   version,
		UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		UpdatedBy: "tester",
		Table: &routes.Doc{Modules: []routes.Module{{Name: "orders", Candidate: "orders-svc", Mode: routes.ModeShadow, Fallback: routes.FallbackNone,
			Routes: []routes.RouteDef{{ID: "orders", Prefix: "/api/orders"}}}}},
		Overrides: map[string]control.Override{"orders": {Mode: routes.ModeCanary, Weight: 10, BaseMode: routes.ModeLegacy}},
		Phases:    map[string]api.PhaseState{"orders": {Module: "orders", Phase: 2, Name: "shadow", Acks: map[string]int{"relay": 2}}},
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testSaveLoad(t *testing.T, s control.Store) {
	ctx := context.Background()
	st := sampleState(7)
	if err := s.Save(ctx, st); err != nil {
		t.Fatalf("first Save: %v", err)
	}
	if st.Revision == 0 {
		t.Fatal("Save left the revision at 0")
	}
	got, err := s.Load(ctx)
	if err != nil || got == nil {
		t.Fatalf("Load after Save = %v, %v", got, err)
	}
	if jsonOf(t, got) != jsonOf(t, st) {
		t.Fatalf("Load = %s\nwant %s", jsonOf(t, got), jsonOf(t, st))
	}
	// A save based on what was loaded is the newest, with a new revision;
	// a change that leaves the table version alone (a phase) is one too.
	first := got.Revision
	got.Phases["orders"] = api.PhaseState{Module: "orders", Phase: 3, Name: "canary"}
	if err := s.Save(ctx, got); err != nil {
		t.Fatalf("Save based on Load: %v", err)
	}
	if got.Revision == first {
		t.Fatalf("revision %d after a second save, want a new one", got.Revision)
	}
	again, err := s.Load(ctx)
	if err != nil || again.Revision != got.Revision || again.Phases["orders"].Phase != 3 || again.Version != 7 {
		t.Fatalf("Load = %+v, %v; want revision %d, phase 3, version 7", again, err, got.Revision)
	}
}

func testConflict(t *testing.T, s control.Store) {
	ctx := context.Background()
	base := sampleState(1)
	if err := s.Save(ctx, base); err != nil {
		t.Fatal(err)
	}
	// Two writers read the same revision; the second to save loses.
	a, _ := s.Load(ctx)
	b, _ := s.Load(ctx)
	a.Version = 2
	if err := s.Save(ctx, a); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	b.Version = 3
	bRev := b.Revision
	err := s.Save(ctx, b)
	var ce *control.ConflictError
	if !errors.Is(err, control.ErrConflict) || !errors.As(err, &ce) || ce.Base != bRev || ce.Stored != a.Revision {
		t.Fatalf("second writer's Save = %v, want a *ConflictError based on %d, stored %d", err, bRev, a.Revision)
	}
	if b.Revision != bRev {
		t.Fatalf("a refused Save changed the revision to %d", b.Revision)
	}
	cur, err := s.Load(ctx)
	if err != nil || cur.Version != 2 {
		t.Fatalf("after the conflict Load = %+v, %v; want the first writer's version 2", cur, err)
	}
	// A save of a store never saved to must be based on revision 0.
	stale := sampleState(9)
	stale.Revision = cur.Revision + 5
	if err := s.Save(ctx, stale); !errors.Is(err, control.ErrConflict) {
		t.Fatalf("Save based on a revision from the future = %v, want ErrConflict", err)
	}
}

func testConcurrentSaves(t *testing.T, s control.Store) {
	ctx := context.Background()
	if err := s.Save(ctx, sampleState(1)); err != nil {
		t.Fatal(err)
	}
	// Each writer bumps the version by one, loading again on a conflict:
	// no increment may be lost.
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for try := 0; ; try++ {
					st, err := s.Load(ctx)
					if err != nil {
						errs <- err
						return
					}
					st.Version++
					err = s.Save(ctx, st)
					if err == nil {
						break
					}
					if !errors.Is(err, control.ErrConflict) || try > 1000 {
						errs <- fmt.Errorf("save: %w", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := s.Load(ctx)
	if err != nil || st.Version != 1+writers*each {
		t.Fatalf("after %d increments Load = %+v, %v; want version %d", writers*each, st, err, 1+writers*each)
	}
}

func testAudit(t *testing.T, s control.Store) {
	ctx := context.Background()
	const n = 25
	for i := 1; i <= n; i++ {
		e := api.AuditEntry{Time: time.Unix(int64(i), 0).UTC(), Actor: "tester", Action: "flip", Module: fmt.Sprintf("m%d", i%3), Version: int64(i)}
		if i == 10 {
			// A table-wide change that moved m1.
			e.Module, e.Action = "", "replace"
			e.Before = json.RawMessage(`{"m1":{"mode":"legacy"},"m2":{"mode":"legacy"}}`)
			e.After = json.RawMessage(`{"m1":{"mode":"extracted"},"m2":{"mode":"legacy"}}`)
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		module string
		limit  int
		want   []int64
	}{
		{"", 7, versions(n, 1, func(int64) bool { return true })},
		{"m1", 3, versions(n, 1, func(v int64) bool { return v%3 == 1 || v == 10 })},
		{"m2", 4, versions(n, 1, func(v int64) bool { return v%3 == 2 && v != 10 })},
		{"nope", 5, nil},
	} {
		t.Run(fmt.Sprintf("module %q limit %d", tc.module, tc.limit), func(t *testing.T) {
			got := AuditVersions(t, s, tc.module, tc.limit, n)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("pages hold versions %v, want %v", got, tc.want)
			}
		})
	}
}

// versions lists from down to to, newest first, those keep keeps.
func versions(from, to int64, keep func(int64) bool) []int64 {
	var out []int64
	for v := from; v >= to; v-- {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

func testRegistrations(t *testing.T, s control.Store) {
	ctx := context.Background()
	created, err := s.Register(ctx, "inventory", "http://127.0.0.1:9002", time.Hour)
	if err != nil || !created {
		t.Fatalf("first Register = %v, %v; want created", created, err)
	}
	created, err = s.Register(ctx, "inventory", "http://127.0.0.1:9002", time.Hour)
	if err != nil || created {
		t.Fatalf("renewal = %v, %v; want not created", created, err)
	}
	if _, err := s.Register(ctx, "inventory", "http://127.0.0.1:9001", time.Hour); err != nil {
		t.Fatal(err)
	}
	// A registration whose TTL ran out is gone, and registering it again
	// creates it.
	if _, err := s.Register(ctx, "orders", "http://127.0.0.1:9100", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		insts, err := s.Instances(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := insts["orders"]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 1ms registration still listed after 30s: %v", insts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	insts, err := s.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := insts["inventory"]
	if len(insts) != 1 || len(inv) != 2 || inv[0].URL != "http://127.0.0.1:9001" || inv[1].URL != "http://127.0.0.1:9002" || !inv[0].ExpiresAt.After(time.Now()) {
		t.Fatalf("Instances = %+v, want inventory's two, sorted, unexpired", insts)
	}
	if created, err := s.Register(ctx, "orders", "http://127.0.0.1:9100", time.Hour); err != nil || !created {
		t.Fatalf("Register after expiry = %v, %v; want created", created, err)
	}
	if ok, err := s.Deregister(ctx, "inventory", "http://127.0.0.1:9002"); err != nil || !ok {
		t.Fatalf("Deregister = %v, %v; want true", ok, err)
	}
	if ok, err := s.Deregister(ctx, "inventory", "http://127.0.0.1:9002"); err != nil || ok {
		t.Fatalf("second Deregister = %v, %v; want false", ok, err)
	}
	insts, _ = s.Instances(ctx)
	if len(insts["inventory"]) != 1 || len(insts["orders"]) != 1 {
		t.Fatalf("after Deregister Instances = %+v", insts)
	}
}

// AuditVersions reads the audit log of module page by page, limit entries
// a page, and returns the versions of its entries in the order read. It
// fails t when a page holds more than limit entries or the pages do not end
// within maxPages.
func AuditVersions(t *testing.T, s control.Store, module string, limit, maxPages int) []int64 {
	t.Helper()
	var got []int64
	before := int64(0)
	for pages := 0; ; pages++ {
		page, err := s.Audit(context.Background(), control.AuditQuery{Module: module, Limit: limit, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) > limit {
			t.Fatalf("page of %d, limit %d", len(page.Entries), limit)
		}
		for _, e := range page.Entries {
			got = append(got, e.Version)
		}
		if page.Next == 0 {
			return got
		}
		if pages > maxPages {
			t.Fatal("the pages do not end")
		}
		before = page.Next
	}
}

func usageDelta(route, template string, legacy2xx, candidate5xx int64, methods uint32, seen time.Time, legacySeen bool) control.Usage {
	d := control.Usage{UsageKey: control.UsageKey{Module: "articles", Route: route, Template: template}, Methods: methods, LastSeen: seen}
	d.Legacy[2], d.Candidate[5] = legacy2xx, candidate5xx
	if legacySeen {
		d.LastLegacy = seen
	}
	return d
}

// testUsage adds the deltas of two replicas to the same rows: the counts
// add up, the methods join and the last-seen times keep the later, even
// when the later one arrives first.
func testUsage(t *testing.T, s control.Store) {
	ctx := context.Background()
	if rows, err := s.Usage(ctx); err != nil || len(rows) != 0 {
		t.Fatalf("Usage of an empty store = %v, %v", rows, err)
	}
	t1 := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	t2 := t1.Add(time.Hour)
	replicaA := []control.Usage{usageDelta("articles-read", "/api/articles/{slug}", 5, 0, 1, t2, true), usageDelta("articles-read", "/api/articles", 1, 0, 1, t1, true)}
	replicaB := []control.Usage{usageDelta("articles-read", "/api/articles/{slug}", 3, 2, 4, t1, true), usageDelta("articles-write", "/api/articles", 0, 1, 4, t2, false)}
	for _, d := range [][]control.Usage{replicaA, replicaB, nil} {
		if err := s.AddUsage(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []control.Usage{
		usageDelta("articles-read", "/api/articles", 1, 0, 1, t1, true),
		usageDelta("articles-read", "/api/articles/{slug}", 8, 2, 5, t2, true),
		usageDelta("articles-write", "/api/articles", 0, 1, 4, t2, false),
	}
	if jsonOf(t, rows) != jsonOf(t, want) {
		t.Fatalf("Usage = %s\nwant %s", jsonOf(t, rows), jsonOf(t, want))
	}
}

// testUsageBounded adds more templates to one route than a store keeps,
// over two calls: the route keeps MaxUsageTemplates of them, the rest
// count in its OtherTemplate row, and another route is not affected.
func testUsageBounded(t *testing.T, s control.Store) {
	ctx := context.Background()
	seen := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const extra = 7
	var first, second []control.Usage
	for i := 0; i < control.MaxUsageTemplates+extra; i++ {
		d := usageDelta("flood", fmt.Sprintf("/x/t%04d", i), 1, 0, 1, seen, true)
		if i < control.MaxUsageTemplates-3 {
			first = append(first, d)
		} else {
			second = append(second, d)
		}
	}
	second = append(second, usageDelta("other-route", "/y", 1, 0, 1, seen, true))
	// A template the route keeps is added to again, past the cap.
	second = append(second, usageDelta("flood", "/x/t0000", 1, 0, 1, seen, true))
	for _, d := range [][]control.Usage{first, second} {
		if err := s.AddUsage(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept, other, total := 0, int64(0), int64(0)
	for _, r := range rows {
		if r.Route != "flood" {
			continue
		}
		total += r.Legacy[2]
		if r.Template == control.OtherTemplate {
			other = r.Legacy[2]
			continue
		}
		kept++
	}
	if kept != control.MaxUsageTemplates || other != extra || total != control.MaxUsageTemplates+extra+1 {
		t.Fatalf("route flood keeps %d templates with %d requests in %s, %d in all; want %d, %d and %d",
			kept, other, control.OtherTemplate, total, control.MaxUsageTemplates, extra, control.MaxUsageTemplates+extra+1)
	}
	if last := rows[len(rows)-1]; last.Route != "other-route" || last.Legacy[2] != 1 {
		t.Fatalf("the last row is %+v, want other-route's", last)
	}
}
