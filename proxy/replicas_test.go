package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// replicaTimings make the replicas of these tests poll and go stale
// quickly, so that a lost store shows within seconds.
var replicaTimings = control.StoreConfig{PollInterval: 200 * time.Millisecond, StaleAfter: time.Second}

// cluster is a set of proxy replicas on one Postgres database, with echo
// backends legacy and orders-svc behind them.
type cluster struct {
	dsn      string
	legacy   *proxytest.Backend
	svc      *proxytest.Backend
	replicas []*proxytest.Proxy
}

// newCluster starts n replicas on a fresh database. The first one starts
// the store on stateTable.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{dsn: dbtest.PostgresDSN(t), legacy: proxytest.EchoBackend(t, "legacy"), svc: proxytest.EchoBackend(t, "orders-svc")}
	for i := 0; i < n; i++ {
		c.replicas = append(c.replicas, c.start(t, c.dsn))
	}
	return c
}

// start starts a replica whose store is dsn, opened as the CLI opens it:
// lazily, so that a replica starts while the store is unreachable.
func (c *cluster) start(t *testing.T, dsn string) *proxytest.Proxy {
	t.Helper()
	return c.startOn(t, dsn, nil)
}

// startOn is start with the opened store passed through wrap, if not nil.
func (c *cluster) startOn(t *testing.T, dsn string, wrap func(*pgstore.Store) control.Store) *proxytest.Proxy {
	t.Helper()
	store := control.NewLazy(func(ctx context.Context) (control.Store, error) {
		s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
		if err != nil || wrap == nil {
			return s, err
		}
		return wrap(s), nil
	})
	// Cleanups run last first: the store closes after the proxy stopped.
	t.Cleanup(func() { _ = store.Close() })
	return proxytest.Start(t, proxytest.Config{Legacy: c.legacy.URL, Options: []proxy.Option{
		proxy.WithStore(store), proxy.WithControlConfig(replicaTimings), proxy.WithInitialTable(stateTable(c.svc.URL)),
	}})
}

// directStore opens the cluster's store for the test to write behind the
// replicas' backs.
func (c *cluster) directStore(t *testing.T) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, c.dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitVersion waits until every replica serves version v or newer, and
// returns how long that took from start.
func (c *cluster) waitVersion(t *testing.T, v int64, start time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for _, r := range c.replicas {
			if r.Version() < v {
				all = false
				break
			}
		}
		if all {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d not served by every replica within 10s: %v", v, c.versions())
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *cluster) versions() []int64 {
	var out []int64
	for _, r := range c.replicas {
		out = append(out, r.Version())
	}
	return out
}

// readyz is a replica's /readyz: its status and its control section.
func readyz(t *testing.T, p *proxytest.Proxy) (int, control.Status, string) {
	t.Helper()
	status, body := adminGet(t, p, "/readyz")
	var out struct {
		Control control.Status `json:"control"`
	}
	_ = json.Unmarshal([]byte(body), &out)
	return status, out.Control, body
}

// TestReplicasConverge makes ~50 changes, each through the next replica's
// admin API, and waits until all three replicas serve each one: it logs
// the convergence times and checks only a generous bound, since the
// machine is shared. Afterwards every replica's data plane, /readyz and
// metrics show the same version.
func TestReplicasConverge(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	const changes = 50
	var times []time.Duration
	for i := 0; i < changes; i++ {
		r := c.replicas[i%len(c.replicas)]
		start := time.Now()
		var m *api.Module
		var err error
		if i%2 == 0 {
			m, err = r.Admin(t).Flip(ctx, "orders")
		} else {
			m, err = r.Admin(t).Rollback(ctx, "orders")
		}
		if err != nil {
			t.Fatalf("change %d through replica %d: %v", i, i%len(c.replicas), err)
		}
		times = append(times, c.waitVersion(t, m.Version, start))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	p50, p99, max := times[len(times)/2], times[(len(times)*99+99)/100-1], times[len(times)-1]
	t.Logf("convergence of %d changes over %d replicas: p50 %v, p99 %v, max %v", changes, len(c.replicas), p50, p99, max)

	want := c.replicas[0].Version()
	for i, r := range c.replicas {
		if got := servedBy(t, r.URL+"/api/orders/1"); got != "legacy" {
			t.Errorf("replica %d serves /api/orders from %q after the last rollback, want legacy", i, got)
		}
		status, st, body := readyz(t, r)
		if status != http.StatusOK || st.Version != want || st.Revision == 0 || st.Degraded || !st.Shared {
			t.Errorf("replica %d /readyz = %d %+v, want 200 at version %d, not degraded: %s", i, status, st, want, body)
		}
		if got := metric(t, r, "strangler_proxy_control_revision"); got != float64(st.Revision) {
			t.Errorf("replica %d strangler_proxy_control_revision = %v, want %d", i, got, st.Revision)
		}
	}
}

// TestReplicasIfMatch: optimistic concurrency holds across replicas. A
// change with If-Match of a version another replica has moved past
// answers 412, wherever it is sent; one with the current version succeeds
// on a replica that had not caught up yet; changes without If-Match sent
// at once through every replica all land, each a new version.
func TestReplicasIfMatch(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	a, b, cc := c.replicas[0].Admin(t), c.replicas[1].Admin(t), c.replicas[2].Admin(t)
	old, err := a.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now, err := b.SetMode(ctx, "orders", routes.ModeExtracted, 0, old.Version)
	if err != nil {
		t.Fatalf("If-Match of the current version through b: %v", err)
	}
	for name, cl := range map[string]*adminclient.Client{"a": a, "b": b, "c": cc} {
		_, err := cl.SetMode(ctx, "orders", routes.ModeLegacy, 0, old.Version)
		var ae *adminclient.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusPreconditionFailed {
			t.Errorf("If-Match of the replaced version %d through %s: %v, want 412", old.Version, name, err)
		}
	}
	// The current version, sent at once to a replica that may be behind.
	if _, err := cc.SetMode(ctx, "orders", routes.ModeShadow, 0, now.Version); err != nil {
		t.Errorf("If-Match of the current version %d through c: %v", now.Version, err)
	}

	before, err := cc.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const each = 5
	var wg sync.WaitGroup
	errs := make(chan error, each*len(c.replicas))
	for i, r := range c.replicas {
		cl := r.Admin(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				mode := routes.ModeExtracted
				if (i+j)%2 == 0 {
					mode = routes.ModeLegacy
				}
				if _, err := cl.SetMode(ctx, "orders", mode, 0, 0); err != nil {
					errs <- fmt.Errorf("replica %d change %d: %w", i, j, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a change without If-Match lost a race: %v", err)
	}
	want := before.Version + each*int64(len(c.replicas))
	c.waitVersion(t, want, time.Now())
	if got := c.versions(); got[0] != want || got[1] != want || got[2] != want {
		t.Errorf("versions after %d concurrent changes = %v, want all %d", each*len(c.replicas), got, want)
	}
}

// TestChaosReplicaStoredTableInvalid writes states straight into the
// store that no replica may serve: every replica refuses each, keeps
// serving the table it had, counts the refusal, and serves the next valid
// change made through the admin API.
func TestChaosReplicaStoredTableInvalid(t *testing.T) {
	if !dbtest.PostgresAvailable() && os.Getenv(dbtest.EnvRequirePostgres) != "1" {
		chaostest.Skipf(t, "invalid tables written into the shared store", "needs Postgres: %s is not set", dbtest.EnvPostgresDSN)
	}
	c := newCluster(t, 2)
	ctx := context.Background()
	if _, err := c.replicas[0].Admin(t).Flip(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	good := c.replicas[0].Version()
	c.waitVersion(t, good, time.Now())
	direct := c.directStore(t)
	for _, tc := range []struct {
		name  string
		table *routes.Doc
	}{
		{"no table", nil},
		{"a table without modules", &routes.Doc{}},
		{"a candidate without a backend", &routes.Doc{Modules: []routes.Module{{Name: "orders", Candidate: "nowhere", Mode: routes.ModeExtracted,
			Routes: []routes.RouteDef{{ID: "orders", Prefix: "/"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := direct.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			refusedBefore := make([]float64, len(c.replicas))
			for i, r := range c.replicas {
				refusedBefore[i] = metric(t, r, "strangler_proxy_control_refused_total")
			}
			st.Version++
			st.Table = tc.table
			if err := direct.Save(ctx, st); err != nil {
				t.Fatal(err)
			}
			for i, r := range c.replicas {
				refused := false
				deadline := time.Now().Add(10 * time.Second)
				for !refused && time.Now().Before(deadline) {
					refused = metric(t, r, "strangler_proxy_control_refused_total") > refusedBefore[i]
					time.Sleep(10 * time.Millisecond)
				}
				served := servedBy(t, r.URL+"/api/orders/1")
				status, cs, _ := readyz(t, r)
				ok := refused && r.Version() == good && served == "orders-svc" && status == http.StatusOK && cs.Refused == st.Revision
				chaostest.Report(t, ok, fmt.Sprintf("%s saved straight into the store at revision %d", tc.name, st.Revision),
					fmt.Sprintf("replica %d refuses it (counted, on /readyz) and keeps serving version %d", i, good),
					fmt.Sprintf("refused %v, version %d, /api/orders from %q, /readyz %d %+v", refused, r.Version(), served, status, cs))
			}
		})
	}
	// A valid change through the admin API is based on the refused
	// revision, repairs the store, and is served everywhere.
	m, err := c.replicas[1].Admin(t).Rollback(ctx, "orders")
	if err != nil {
		t.Fatalf("rollback after the refused states: %v", err)
	}
	c.waitVersion(t, m.Version, time.Now())
	for i, r := range c.replicas {
		if got := servedBy(t, r.URL+"/api/orders/1"); got != "legacy" {
			t.Errorf("replica %d serves /api/orders from %q after the rollback, want legacy", i, got)
		}
		if _, cs, _ := readyz(t, r); cs.Refused != 0 {
			t.Errorf("replica %d still reports a refused revision: %+v", i, cs)
		}
	}
}

// TestChaosReplicaStoreLoss cuts two replicas off their store: they keep
// serving their last good table, report themselves degraded on /readyz
// (still 200: a load balancer must not drop every replica when Postgres
// goes) and in the staleness metric, and once the store returns they serve
// the change made meanwhile and are no longer degraded.
func TestChaosReplicaStoreLoss(t *testing.T) {
	if !dbtest.PostgresAvailable() && os.Getenv(dbtest.EnvRequirePostgres) != "1" {
		chaostest.Skipf(t, "the shared store cut off", "needs Postgres: %s is not set", dbtest.EnvPostgresDSN)
	}
	c := &cluster{dsn: dbtest.PostgresDSN(t), legacy: proxytest.EchoBackend(t, "legacy"), svc: proxytest.EchoBackend(t, "orders-svc")}
	g, gated := dbtest.NewGate(t, c.dsn)
	c.replicas = []*proxytest.Proxy{c.start(t, gated), c.start(t, gated)}
	ctx := context.Background()
	m, err := c.replicas[0].Admin(t).Flip(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	c.waitVersion(t, m.Version, time.Now())

	g.Close()
	direct := c.directStore(t)
	st, err := direct.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := *st
	next.Table = stateTable(c.svc.URL) // orders back on legacy
	next.Version++
	if err := direct.Save(ctx, &next); err != nil {
		t.Fatal(err)
	}
	for i, r := range c.replicas {
		var status int
		var cs control.Status
		proxytest.Eventually(t, 20*time.Second, func() bool {
			status, cs, _ = readyz(t, r)
			return cs.Degraded
		}, "replica %d never reported degraded: %d %+v", i, status, cs)
		served := servedBy(t, r.URL+"/api/orders/1")
		stale := metric(t, r, "strangler_proxy_control_staleness_seconds")
		ok := status == http.StatusOK && served == "orders-svc" && r.Version() == m.Version && stale >= replicaTimings.StaleAfter.Seconds() && cs.StoreError != ""
		chaostest.Report(t, ok, fmt.Sprintf("replica %d's connections to the store cut, a change saved meanwhile", i),
			"it keeps serving its last good table, /readyz 200 degraded with the store error, staleness above stale_after",
			fmt.Sprintf("/readyz %d %+v, /api/orders from %q, version %d, staleness %.1fs", status, cs, served, r.Version(), stale))
	}

	g.Open()
	c.waitVersion(t, next.Version, time.Now())
	for i, r := range c.replicas {
		var cs control.Status
		proxytest.Eventually(t, 20*time.Second, func() bool {
			_, cs, _ = readyz(t, r)
			return !cs.Degraded && cs.StoreError == ""
		}, "replica %d still degraded after the store returned: %+v", i, cs)
		served := servedBy(t, r.URL+"/api/orders/1")
		chaostest.Report(t, served == "legacy" && cs.Version == next.Version, fmt.Sprintf("the store back for replica %d", i),
			fmt.Sprintf("it catches up to version %d (orders on legacy)", next.Version),
			fmt.Sprintf("%+v, /api/orders from %q", cs, served))
	}
}

// TestChaosReplicaStartsStoreDown starts a replica while its store is
// unreachable: it is not ready and answers every request 503 no-table,
// never an empty table's 404, and once the store is back it serves the
// current version and is ready.
func TestChaosReplicaStartsStoreDown(t *testing.T) {
	if !dbtest.PostgresAvailable() && os.Getenv(dbtest.EnvRequirePostgres) != "1" {
		chaostest.Skipf(t, "a replica started with the store down", "needs Postgres: %s is not set", dbtest.EnvPostgresDSN)
	}
	c := newCluster(t, 1)
	ctx := context.Background()
	m, err := c.replicas[0].Admin(t).Flip(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	g, gated := dbtest.NewGate(t, c.dsn)
	g.Close()
	late := c.start(t, gated)

	status, cs, body := readyz(t, late)
	resp, err := http.Get(late.URL + "/api/orders/1")
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ok := status == http.StatusServiceUnavailable && strings.Contains(body, "control_table") && resp.StatusCode == http.StatusServiceUnavailable &&
		strings.Contains(string(pb), "no-table") && late.Version() == 0
	chaostest.Report(t, ok, "a replica started while its store is unreachable",
		"/readyz 503 naming control_table, every request 503 problem no-table",
		fmt.Sprintf("/readyz %d %s %+v; GET /api/orders/1: %d %s", status, body, cs, resp.StatusCode, pb))
	if _, err := late.Admin(t).Rollback(ctx, "orders"); err == nil {
		t.Error("a change through a replica without a table succeeded")
	} else if ae := (*adminclient.Error)(nil); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("a change through a replica without a table: %v, want 503", err)
	}

	g.Open()
	c.replicas = append(c.replicas, late)
	c.waitVersion(t, m.Version, time.Now())
	waitReadyz(t, late, http.StatusOK)
	if got := servedBy(t, late.URL+"/api/orders/1"); got != "orders-svc" {
		t.Errorf("the late replica serves /api/orders from %q, want orders-svc (the flip)", got)
	}
}

// TestReplicaStartsDuringChanges starts replicas while changes are made
// through another one: each is ready only at a version no older than the
// one served when it started, and then follows the rest.
func TestReplicaStartsDuringChanges(t *testing.T) {
	c := newCluster(t, 1)
	ctx := context.Background()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		cl := c.replicas[0].Admin(t)
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			mode := routes.ModeExtracted
			if i%2 == 1 {
				mode = routes.ModeLegacy
			}
			if _, err := cl.SetMode(ctx, "orders", mode, 0, 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 3; i++ {
		before := c.replicas[0].Version()
		r := c.start(t, c.dsn)
		waitReadyz(t, r, http.StatusOK)
		if got := r.Version(); got < before {
			t.Errorf("replica %d started during changes is ready at version %d, older than the %d served when it started", i+1, got, before)
		}
		c.replicas = append(c.replicas, r)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("a change during the starts: %v", err)
	}
	c.waitVersion(t, c.replicas[0].Version(), time.Now())
}

// TestChaosReplicaMissedNotification changes the stored state with SQL
// that notifies nobody, as a writer whose notification was lost: the
// replicas' poll finds the new revision and serves it. The poll reads the
// stored revision alone, and the whole state only when the revision
// moved: a third replica, whose store counts its reads, loads nothing
// while nothing changes, and once after the change.
func TestChaosReplicaMissedNotification(t *testing.T) {
	if !dbtest.PostgresAvailable() && os.Getenv(dbtest.EnvRequirePostgres) != "1" {
		chaostest.Skipf(t, "a change that notifies nobody", "needs Postgres: %s is not set", dbtest.EnvPostgresDSN)
	}
	c := newCluster(t, 2)
	counted := &countedStore{}
	c.replicas = append(c.replicas, c.startOn(t, c.dsn, func(s *pgstore.Store) control.Store { counted.Store = s; return counted }))
	c.waitVersion(t, c.replicas[0].Version(), time.Now())
	// Ten polls with nothing to change.
	loads, probes := counted.loads.Load(), counted.revisions.Load()
	proxytest.Eventually(t, 30*time.Second, func() bool { return counted.revisions.Load() >= probes+10 },
		"the counted replica's poll read the revision %d times, not 10, in 30s", counted.revisions.Load()-probes)
	idle := counted.loads.Load() - loads
	chaostest.Report(t, idle == 0, "ten polls of a store that does not change",
		"the replica reads the stored revision each time and loads the state never",
		fmt.Sprintf("%d revision reads, %d loads", counted.revisions.Load()-probes, idle))

	ctx := context.Background()
	st, err := c.directStore(t).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := *st
	next.Version++
	next.Revision++
	next.Table = stateTable(c.svc.URL)
	next.Table.Modules[1].Mode = routes.ModeExtracted
	doc, err := json.Marshal(&next)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	loads = counted.loads.Load()
	if _, err := conn.Exec(ctx, `UPDATE control_state SET revision = $1, doc = $2 WHERE id = 1`, next.Revision, doc); err != nil {
		t.Fatal(err)
	}
	for i, r := range c.replicas {
		deadline := time.Now().Add(10 * time.Second)
		for r.Version() < next.Version && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		served := servedBy(t, r.URL+"/api/orders/1")
		chaostest.Report(t, r.Version() == next.Version && served == "orders-svc",
			fmt.Sprintf("revision %d saved with SQL that sends no notification", next.Revision),
			fmt.Sprintf("replica %d's poll finds it and serves version %d within 10s", i, next.Version),
			fmt.Sprintf("version %d, /api/orders from %q", r.Version(), served))
	}
	if n := counted.loads.Load() - loads; n < 1 {
		t.Errorf("the counted replica serves the new revision with %d loads of the state", n)
	}
}

// countedStore is a pgstore that counts the loads of the whole state and
// the reads of the revision alone.
type countedStore struct {
	*pgstore.Store
	loads, revisions atomic.Int64
}

func (c *countedStore) Load(ctx context.Context) (*control.State, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx)
}

func (c *countedStore) Revision(ctx context.Context) (int64, error) {
	c.revisions.Add(1)
	return c.Store.Revision(ctx)
}

// TestReplicasShadowMerged shadows one module on two replicas and sends
// some reads through each: the module's shadow stats and its diffs'
// samples, asked of either replica, are the two replicas' together.
func TestReplicasShadowMerged(t *testing.T) {
	c := newCluster(t, 2)
	ctx := context.Background()
	m, err := c.replicas[0].Admin(t).Shadow(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	c.waitVersion(t, m.Version, time.Now())
	sent := map[string]bool{}
	for i, n := range []int{3, 2} {
		for j := 0; j < n; j++ {
			path := fmt.Sprintf("/api/orders/r%d-%d", i, j)
			if got := servedBy(t, c.replicas[i].URL+path); got != "legacy" {
				t.Fatalf("replica %d served %s from %q while shadowing, want legacy", i, path, got)
			}
			sent[path] = true
		}
	}
	for i, r := range c.replicas {
		var (
			mod *api.Module
			d   *api.Diffs
		)
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var err1, err2 error
			mod, err1 = r.Admin(t).Module(ctx, "orders")
			d, err2 = r.Admin(t).Diffs(ctx, "orders")
			if err1 == nil && err2 == nil && mod.Shadow.Compared == 5 && len(d.Routes) == 1 && d.Routes[0].Stats.Compared == 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d does not show the 5 copies of both replicas: module %+v, %v; diffs %+v, %v", i, mod, err1, d, err2)
			}
		}
		if mod.Shadow.Mismatches != 5 || mod.Shadow.MismatchRate != 1 {
			t.Errorf("replica %d: module shadow stats %+v, want 5 mismatches of 5", i, mod.Shadow)
		}
		seen := map[string]bool{}
		for k, s := range d.Routes[0].Samples {
			seen[s.URI] = true
			if k > 0 && s.Time.After(d.Routes[0].Samples[k-1].Time) {
				t.Errorf("replica %d: samples not newest first: %v after %v", i, s.Time, d.Routes[0].Samples[k-1].Time)
			}
		}
		for path := range sent {
			if !seen[path] {
				t.Errorf("replica %d: no sample of %s among %d samples: %v", i, path, len(d.Routes[0].Samples), seen)
			}
		}
	}
}
