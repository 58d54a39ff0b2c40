package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control/filestore"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// stateTable is a table for tests that manage it through the API.
func stateTable(candidate string) *routes.Doc {
	return &routes.Doc{
		Backends: map[string]routes.Backend{"orders-svc": {URLs: []string{candidate}}},
		Modules: []routes.Module{
			{Name: "default", Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}}},
			{Name: "orders", Candidate: "orders-svc", Routes: []routes.RouteDef{{ID: "orders", Prefix: "/api/orders"}}},
		},
	}
}

func adminDo(t *testing.T, method, url, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp, m
}

// TestAdminAuth: the admin API needs the bearer token and says so with a
// problem; health and metrics stay open.
func TestAdminAuth(t *testing.T) {
	p := proxytest.Start(t, proxytest.Config{})
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401},
		{"wrong token", "not-the-token-at-all-000000000000", 401},
		{"prefix of the token", proxytest.Token[:10], 401},
		{"right token", proxytest.Token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/table", "/v1/modules", "/v1/audit"} {
				resp, body := adminDo(t, http.MethodGet, p.AdminURL+path, tc.token, "")
				if resp.StatusCode != tc.status {
					t.Fatalf("%s: %d, want %d", path, resp.StatusCode, tc.status)
				}
				if tc.status == 401 {
					if resp.Header.Get("Content-Type") != "application/problem+json" || body["status"] != float64(401) || resp.Header.Get("WWW-Authenticate") == "" {
						t.Fatalf("%s: not a 401 problem: %v %v", path, resp.Header, body)
					}
				}
			}
			resp, _ := adminDo(t, http.MethodPost, p.AdminURL+"/v1/modules/default/rollback", tc.token, "")
			if tc.status == 401 && resp.StatusCode != 401 {
				t.Fatalf("a change went through without the token: %d", resp.StatusCode)
			}
		})
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, _ := adminDo(t, http.MethodGet, p.AdminURL+path, "", "")
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if strings.Contains(p.Log.String(), proxytest.Token) || strings.Contains(p.Access.String(), proxytest.Token) {
		t.Fatal("the token appears in a log")
	}
}

// TestModuleOperations walks a module through shadow, canary, flip and
// rollback through the API and checks traffic, audit and bad input.
func TestModuleOperations(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL})
	ctx := context.Background()
	c := p.Admin(t)
	tbl, err := c.ReplaceTable(ctx, stateTable(svc.URL), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Source != "state" || tbl.Version != 2 {
		t.Fatalf("after replace: source %s version %d", tbl.Source, tbl.Version)
	}
	served := func() string {
		_, e := proxytest.Get(t, p.URL+"/api/orders/1", nil)
		return e.Backend
	}
	if served() != "legacy" {
		t.Fatal("a new module must start on legacy")
	}
	steps := []struct {
		do      func() (*api.Module, error)
		mode    routes.Mode
		weight  int
		backend string
	}{
		{func() (*api.Module, error) { return c.Shadow(ctx, "orders") }, routes.ModeShadow, 0, "legacy"},
		{func() (*api.Module, error) { return c.Canary(ctx, "orders", 100) }, routes.ModeCanary, 100, "orders-svc"},
		{func() (*api.Module, error) { return c.Canary(ctx, "orders", 0) }, routes.ModeCanary, 0, "legacy"},
		{func() (*api.Module, error) { return c.Flip(ctx, "orders") }, routes.ModeExtracted, 0, "orders-svc"},
		{func() (*api.Module, error) { return c.Rollback(ctx, "orders") }, routes.ModeLegacy, 0, "legacy"},
	}
	for i, s := range steps {
		m, err := s.do()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if m.Mode != s.mode || m.Weight != s.weight || m.Version != int64(3+i) {
			t.Fatalf("step %d: module %+v", i, m)
		}
		if got := served(); got != s.backend {
			t.Fatalf("step %d (%s): served by %s, want %s", i, s.mode, got, s.backend)
		}
	}
	audit, err := c.Audit(ctx, "orders", 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
		if !strings.HasPrefix(e.Actor, "tester@test") {
			t.Errorf("actor %q", e.Actor)
		}
	}
	if got := strings.Join(actions, ","); got != "rollback,flip,canary,canary,shadow,replace" {
		t.Fatalf("audit actions %s", got)
	}
	if string(audit[0].Before) != `{"mode":"extracted","weight":0}` || string(audit[0].After) != `{"mode":"legacy","weight":0}` {
		t.Errorf("rollback audit: %s → %s", audit[0].Before, audit[0].After)
	}

	// Bad input is refused with a problem and changes nothing.
	before, _ := c.Table(ctx)
	for _, tc := range []struct {
		name   string
		call   func() error
		status int
	}{
		{"weight over 100", func() error { _, err := c.Canary(ctx, "orders", 101); return err }, 422},
		{"negative weight", func() error { _, err := c.Canary(ctx, "orders", -1); return err }, 422},
		{"unknown module", func() error { _, err := c.Flip(ctx, "nope"); return err }, 404},
		{"module without candidate", func() error { _, err := c.Flip(ctx, "default"); return err }, 422},
		{"invalid table", func() error {
			bad := stateTable(svc.URL)
			bad.Modules[1].Routes[0].Prefix = "api/orders"
			_, err := c.ReplaceTable(ctx, bad, 0)
			return err
		}, 422},
		{"stale version", func() error { _, err := c.ReplaceTable(ctx, stateTable(svc.URL), 1); return err }, 412},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if adminclient.StatusOf(err) != tc.status {
				t.Fatalf("got %v (status %d), want %d", err, adminclient.StatusOf(err), tc.status)
			}
		})
	}
	for _, raw := range []struct{ path, body string }{
		{"/v1/modules/orders/canary", ""},
		{"/v1/modules/orders/canary?weight=ten", ""},
	} {
		resp, body := adminDo(t, http.MethodPost, p.AdminURL+raw.path, proxytest.Token, raw.body)
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v", raw.path, resp.StatusCode, body)
		}
	}
	resp, body := adminDo(t, http.MethodPut, p.AdminURL+"/v1/table", proxytest.Token, `{"modules":[{"name":"x","routs":[]}]}`)
	if resp.StatusCode != 400 || !strings.Contains(body["detail"].(string), "routs") {
		t.Errorf("unknown field: %d %v", resp.StatusCode, body)
	}
	after, _ := c.Table(ctx)
	if after.Version != before.Version {
		t.Fatalf("a refused change moved the version from %d to %d", before.Version, after.Version)
	}
}

// TestPersistenceAcrossRestart: changes survive a restart, and so does the
// audit log.
func TestPersistenceAcrossRestart(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	dir := t.TempDir()
	ctx := context.Background()

	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir})
	c := p.Admin(t)
	if _, err := c.ReplaceTable(ctx, stateTable(svc.URL), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Canary(ctx, "orders", 30); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)

	info, err := os.Stat(filepath.Join(dir, "state", "state.json"))
	if err != nil || info.Mode().Perm()&0o007 != 0 {
		t.Fatalf("state file: %v %v", info, err)
	}
	p2 := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir})
	c2 := p2.Admin(t)
	m, err := c2.Module(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode != routes.ModeCanary || m.Weight != 30 || m.Version != 3 {
		t.Fatalf("after restart: %+v", m)
	}
	audit, _ := c2.Audit(ctx, "", 10)
	if len(audit) != 2 || audit[0].Action != "canary" {
		t.Fatalf("audit after restart: %+v", audit)
	}
}

// TestFileManagedTable: with a routes file, module operations are kept as
// overrides that survive restarts and reloads, the whole table cannot be
// replaced through the API, and a file edit of a module's mode wins over
// the override.
func TestFileManagedTable(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	dir := t.TempDir()
	ctx := context.Background()
	file := extractedTable(svc.URL, "")
	file = strings.Replace(file, "mode: extracted", "mode: legacy", 1)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: file, Dir: dir})
	c := p.Admin(t)
	if _, err := c.Flip(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReplaceTable(ctx, stateTable(svc.URL), 0); adminclient.StatusOf(err) != 409 {
		t.Fatalf("replace of a file-managed table: %v", err)
	}
	p.Stop(t)
	p = proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: file, Dir: dir})
	c = p.Admin(t)
	m, _ := c.Module(ctx, "orders")
	if m.Mode != routes.ModeExtracted || m.Override == nil {
		t.Fatalf("override lost on restart: %+v", m)
	}
	// An unrelated edit keeps the override.
	p.WriteRoutes(t, file+"\n# comment\n")
	proxytest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, p, "strangler_proxy_routes_file_reloads_total", `result="ok"`) == 1
	}, "the reload did not happen")
	if m2, _ := c.Module(ctx, "orders"); m2.Mode != routes.ModeExtracted {
		t.Fatalf("an unrelated file edit dropped the override: %+v", m2)
	}
	// Editing the module's mode in the file wins.
	p.WriteRoutes(t, strings.Replace(file, "mode: legacy", "mode: canary\n    weight: 20", 1))
	proxytest.Eventually(t, 10*time.Second, func() bool {
		m3, _ := c.Module(ctx, "orders")
		return m3.Mode == routes.ModeCanary && m3.Weight == 20 && m3.Override == nil
	}, "the file's new mode did not win over the override")
}

// TestTokenFile: EnsureToken creates a 0600 token file once and reuses it.
func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	cfg := proxy.Config{}
	cfg.SetDefaults(dir)
	path, created, err := proxy.EnsureToken(&cfg)
	if err != nil || !created || path != filepath.Join(dir, "admin.token") || len(cfg.AdminToken) != 64 {
		t.Fatalf("%q %v %v %d", path, created, err, len(cfg.AdminToken))
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	again := proxy.Config{}
	again.SetDefaults(dir)
	if _, created, err := proxy.EnsureToken(&again); err != nil || created || again.AdminToken != cfg.AdminToken {
		t.Fatalf("not reused: %v %v", created, err)
	}
	_ = os.Chmod(path, 0o644)
	third := proxy.Config{}
	third.SetDefaults(dir)
	if _, _, err := proxy.EnsureToken(&third); err == nil {
		t.Fatal("a world-readable token file was accepted")
	}
}

// TestStoreConflictRetried: when another writer of the proxy's store
// saved after the proxy last did (another replica, say), a change made
// without If-Match is redone on the newer state, which it keeps (the
// other writer's phase); one with If-Match of a table version the other
// writer replaced answers 412 and changes nothing.
func TestStoreConflictRetried(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Options: []proxy.Option{proxy.WithStore(store)}})
	ctx := context.Background()
	c := p.Admin(t)
	if _, err := c.ReplaceTable(ctx, stateTable(svc.URL), 0); err != nil {
		t.Fatal(err)
	}
	// The other writer: a phase change saved behind the proxy's back.
	other, err := store.Load(ctx)
	if err != nil || other == nil {
		t.Fatalf("Load: %v %v", other, err)
	}
	other.Phases = map[string]api.PhaseState{"orders": {Module: "orders", Phase: 1, Name: "shadow"}}
	if err := store.Save(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Flip(ctx, "orders"); err != nil {
		t.Fatalf("flip without If-Match after another writer's save: %v", err)
	}
	if _, e := proxytest.Get(t, p.URL+"/api/orders/1", nil); e == nil || e.Backend != "orders-svc" {
		t.Fatalf("after the flip, served by %+v, want orders-svc", e)
	}
	saved, err := store.Load(ctx)
	if err != nil || saved.Revision != other.Revision+1 || saved.Phases["orders"].Phase != 1 {
		t.Fatalf("the store holds %+v, %v; want revision %d with the other writer's phase", saved, err, other.Revision+1)
	}

	// The other writer replaces the table: a change with If-Match of the
	// version before is refused.
	seen := saved.Version
	saved.Version++
	saved.Table = stateTable(svc.URL)
	if err := store.Save(ctx, saved); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReplaceTable(ctx, stateTable(svc.URL), seen); adminclient.StatusOf(err) != http.StatusPreconditionFailed {
		t.Fatalf("replace with If-Match %d after another writer's table: %v (status %d), want 412", seen, err, adminclient.StatusOf(err))
	}
	if got, err := store.Load(ctx); err != nil || got.Revision != saved.Revision {
		t.Fatalf("the store holds %+v, %v; want the other writer's revision %d untouched", got, err, saved.Revision)
	}
}
