package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// stateProxy starts a proxy in dir (a temp dir if "") on stateTable,
// managed through the admin API, with echo backends named legacy and
// orders-svc. It returns the candidate's URL too.
func stateProxy(t *testing.T, dir string) (*proxytest.Proxy, *adminclient.Client, string) {
	t.Helper()
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir})
	c := p.Admin(t)
	if _, err := c.ReplaceTable(context.Background(), stateTable(svc.URL), 0); err != nil {
		t.Fatal(err)
	}
	return p, c, svc.URL
}

// servedBy names the echo backend that answered GET url, or "" when none
// did.
func servedBy(t *testing.T, url string) string {
	t.Helper()
	if _, e := proxytest.Get(t, url, nil); e != nil {
		return e.Backend
	}
	return ""
}

// TestChaosEmptyTable: a table with no routes, through the admin API or
// the routes file, is refused with its cause, and the table that serves
// keeps serving. An empty table would answer every request 404.
func TestChaosEmptyTable(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	ctx := context.Background()

	t.Run("admin API", func(t *testing.T) {
		p, c, _ := stateProxy(t, "")
		if _, err := c.Flip(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
		before, _ := c.Table(ctx)
		for _, tc := range []struct{ name, body, yaml string }{
			{name: "json null", body: "null"},
			{name: "json empty object", body: "{}"},
			{name: "json no modules", body: `{"modules":[]}`},
			{name: "yaml no modules", yaml: "modules: []\n"},
			{name: "yaml bare document", yaml: "---\n"},
			{name: "yaml backends only", yaml: "backends: {}\n"},
			{name: "yaml cut short", yaml: "backends:\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, field, detail := 0, "", ""
				if tc.yaml != "" {
					_, err := c.ReplaceTableYAML(ctx, []byte(tc.yaml), 0)
					var ae *adminclient.Error
					if errors.As(err, &ae) {
						status, detail = ae.Status, ae.Error()
						if len(ae.Problem.Errors) > 0 {
							field = ae.Problem.Errors[0].Field
						}
					}
				} else {
					resp, body := adminDo(t, http.MethodPut, p.AdminURL+"/v1/table", proxytest.Token, tc.body)
					status, detail = resp.StatusCode, fmt.Sprint(body)
					if errs, _ := body["errors"].([]any); len(errs) > 0 {
						field, _ = errs[0].(map[string]any)["field"].(string)
					}
				}
				served := servedBy(t, p.URL+"/api/orders/1")
				after, _ := c.Table(ctx)
				ok := status == http.StatusUnprocessableEntity && field == "modules" && served == "orders-svc" && after.Version == before.Version
				chaostest.Report(t, ok, "PUT /v1/table with "+tc.name,
					"422 naming modules, the old table serving /api/orders from orders-svc",
					fmt.Sprintf("status %d field %q (%s), served by %q, version %d→%d", status, field, detail, served, before.Version, after.Version))
			})
		}
	})

	t.Run("routes file", func(t *testing.T) {
		table := extractedTable(svc.URL, "")
		p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: table})
		c := p.Admin(t)
		before, _ := c.Table(ctx)
		for i, tc := range []struct{ name, file string }{
			{"no modules", "modules: []\n"},
			{"a bare document", "---\n"},
			{"backends only", "backends: {}\n"},
			{"cut short by an editor", "backends:\n"},
			{"empty", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p.WriteRoutes(t, tc.file)
				proxytest.Eventually(t, 10*time.Second, func() bool {
					return metric(t, p, "strangler_proxy_routes_file_reloads_total", `result="error"`) == float64(i+1)
				}, "the reload of %q was not counted as an error", tc.file)
				served := servedBy(t, p.URL+"/api/orders/1")
				after, _ := c.Table(ctx)
				invalid := metric(t, p, "strangler_proxy_routes_file_invalid")
				ok := served == "orders-svc" && after.Version == before.Version && invalid == 1
				chaostest.Report(t, ok, "a routes file that is "+tc.name,
					"refused, flagged invalid, the old table serving /api/orders from orders-svc",
					fmt.Sprintf("served by %q, version %d→%d, invalid %v", served, before.Version, after.Version, invalid))
				// Restore the file, with different bytes each time so
				// that the reload reads it.
				p.WriteRoutes(t, table+strings.Repeat("\n", i+1))
				proxytest.Eventually(t, 10*time.Second, func() bool {
					return metric(t, p, "strangler_proxy_routes_file_invalid") == 0
				}, "restoring the file did not clear the flag")
			})
		}
		refusals := 0
		for _, l := range p.Log.Lines() {
			if l["level"] == "ERROR" && l["msg"] == "routes file refused; the previous table keeps serving" {
				refusals++
			}
		}
		if refusals != 5 {
			t.Fatalf("%d refusals logged at ERROR, want 5", refusals)
		}
	})
}

// TestTableWithoutCatchAllWarns: a table that covers only some paths is
// accepted, but the admin answer, a gauge and a WARN line say that other
// paths get 404, as a third-party app's /swagger/... did.
func TestTableWithoutCatchAllWarns(t *testing.T) {
	p, c, svc := stateProxy(t, "")
	ctx := context.Background()
	full := stateTable(svc)
	apiOnly := stateTable(svc)
	apiOnly.Modules = apiOnly.Modules[1:]
	for _, tc := range []struct {
		name     string
		doc      *routes.Doc
		warn     bool
		swagger  int
		catchAll float64
	}{
		{"only /api/orders", apiOnly, true, http.StatusNotFound, 0},
		{"with a catch-all", full, false, http.StatusOK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(p.Log.String(), "route table has no catch-all route")
			tbl, err := c.ReplaceTable(ctx, tc.doc, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := c.Table(ctx)
			for _, w := range [][]string{tbl.Warnings, got.Warnings} {
				if has := len(w) == 1 && strings.Contains(w[0], "404"); has != tc.warn {
					t.Fatalf("warnings %q, want a 404 warning: %v", w, tc.warn)
				}
			}
			if g := metric(t, p, "strangler_proxy_table_catch_all"); g != tc.catchAll {
				t.Fatalf("catch-all gauge %v, want %v", g, tc.catchAll)
			}
			logged := strings.Count(p.Log.String(), "route table has no catch-all route") - before
			if (logged == 1) != tc.warn {
				t.Fatalf("%d warnings logged", logged)
			}
			resp, _ := proxytest.Get(t, p.URL+"/swagger/index.html", nil)
			if resp.StatusCode != tc.swagger {
				t.Fatalf("/swagger: %d, want %d", resp.StatusCode, tc.swagger)
			}
		})
	}
}

// TestChaosDiskFull: a change the proxy cannot persist because its state
// disk is full answers 507 without the state dir's path, and neither the
// table that serves nor the state on disk changes.
func TestChaosDiskFull(t *testing.T) {
	dir := proxy.MountTmpfs(t, "module flip, table replace and phase change with the state dir on a full 256 KiB tmpfs", "256k")
	p, c, svc := stateProxy(t, dir)
	ctx := context.Background()
	statePath := filepath.Join(dir, "state", "state.json")
	saved, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	filler := proxy.FillDisk(t, dir, 0)
	before, _ := c.Table(ctx)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"flip", func() error { _, err := c.Flip(ctx, "orders"); return err }},
		{"replace", func() error {
			doc := stateTable(svc)
			doc.Modules[1].Mode = routes.ModeExtracted
			_, err := c.ReplaceTable(ctx, doc, 0)
			return err
		}},
		{"phase", func() error { _, err := c.SetPhase(ctx, "orders", 2, 0); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			detail := ""
			var ae *adminclient.Error
			if errors.As(err, &ae) {
				detail = ae.Problem.Detail + ae.Problem.Title
			}
			served := servedBy(t, p.URL+"/api/orders/1")
			after, _ := c.Table(ctx)
			onDisk, _ := os.ReadFile(statePath)
			ok := adminclient.StatusOf(err) == http.StatusInsufficientStorage && !strings.Contains(detail, dir) &&
				served == "legacy" && after.Version == before.Version && bytes.Equal(onDisk, saved)
			chaostest.Report(t, ok, tc.name+" with the state disk full",
				"507 without the path, legacy still serving /api/orders, version and state.json unchanged",
				fmt.Sprintf("status %d %q, served by %q, version %d→%d, state.json unchanged %v",
					adminclient.StatusOf(err), detail, served, before.Version, after.Version, bytes.Equal(onDisk, saved)))
		})
	}
	// Room again: the change goes through.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Flip(ctx, "orders"); err != nil {
		t.Fatalf("flip after the disk has room: %v", err)
	}
}

// TestModuleOpsIfMatch: module operations take If-Match like PUT
// /v1/table: a stale version is refused with 412 and changes nothing, a
// malformed one is 400, the current one or none goes through.
func TestModuleOpsIfMatch(t *testing.T) {
	p, c, _ := stateProxy(t, "")
	ctx := context.Background()
	post := func(path, ifMatch string) int {
		req, _ := http.NewRequest(http.MethodPost, p.AdminURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+proxytest.Token)
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, path string
		ifMatch    func(current int64) string
		status     int
	}{
		{"stale flip", "/v1/modules/orders/flip", func(v int64) string { return fmt.Sprintf(`"%d"`, v-1) }, 412},
		{"stale canary", "/v1/modules/orders/canary?weight=10", func(v int64) string { return fmt.Sprintf(`"%d"`, v-1) }, 412},
		{"future shadow", "/v1/modules/orders/shadow", func(v int64) string { return fmt.Sprintf(`"%d"`, v+5) }, 412},
		{"malformed", "/v1/modules/orders/flip", func(int64) string { return `"twelve"` }, 400},
		{"current flip", "/v1/modules/orders/flip", func(v int64) string { return fmt.Sprintf(`"%d"`, v) }, 200},
		{"current rollback unquoted", "/v1/modules/orders/rollback", func(v int64) string { return fmt.Sprint(v) }, 200},
		{"no If-Match", "/v1/modules/orders/shadow", func(int64) string { return "" }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := c.Module(ctx, "orders")
			status := post(tc.path, tc.ifMatch(before.Version))
			after, _ := c.Module(ctx, "orders")
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if changed := after.Version != before.Version; changed != (tc.status == 200) {
				t.Fatalf("version %d→%d after %d", before.Version, after.Version, status)
			}
		})
	}

	// The client's conditional form.
	m, _ := c.Module(ctx, "orders")
	if _, err := c.SetMode(ctx, "orders", routes.ModeCanary, 20, m.Version-1); adminclient.StatusOf(err) != 412 {
		t.Fatalf("client with a stale version: %v", err)
	}
	if got, err := c.SetMode(ctx, "orders", routes.ModeCanary, 20, m.Version); err != nil || got.Weight != 20 {
		t.Fatalf("client with the current version: %+v %v", got, err)
	}
}

// TestOverrideSurvivesModuleLeavingFile: an operator's flip survives a
// routes file written briefly without the module: the override is kept
// dormant, shown in the table's state and logged, and applies again when
// the module returns.
func TestOverrideSurvivesModuleLeavingFile(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	file := strings.Replace(extractedTable(svc.URL, ""), "mode: extracted", "mode: legacy", 1)
	without := `
modules:
  - name: default
    routes: [{id: default, prefix: /}]
`
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: file})
	c := p.Admin(t)
	ctx := context.Background()
	served := func() string { return servedBy(t, p.URL+"/api/orders/1") }
	if _, err := c.Flip(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if served() != "orders-svc" {
		t.Fatal("the flip did not serve")
	}
	p.WriteRoutes(t, without)
	proxytest.Eventually(t, 10*time.Second, func() bool { return served() == "legacy" }, "the file without orders was not applied")
	tbl, _ := c.Table(ctx)
	if o, ok := tbl.DormantOverrides["orders"]; !ok || o.Mode != routes.ModeExtracted {
		t.Fatalf("the dormant override is not shown: %+v", tbl.DormantOverrides)
	}
	if !strings.Contains(p.Log.String(), "module override dormant") {
		t.Fatal("the dormant override was not logged")
	}
	p.WriteRoutes(t, file)
	proxytest.Eventually(t, 10*time.Second, func() bool { return served() == "orders-svc" }, "the flip did not come back with the module")
	m, _ := c.Module(ctx, "orders")
	if m.Mode != routes.ModeExtracted || m.Override == nil {
		t.Fatalf("after the module returned: %+v", m)
	}
	if tbl, _ := c.Table(ctx); len(tbl.DormantOverrides) != 0 {
		t.Fatalf("still dormant: %+v", tbl.DormantOverrides)
	}
	// A restart keeps it too.
	p.Stop(t)
	p = proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: file, Dir: p.Dir})
	if served() != "orders-svc" {
		t.Fatal("the flip was lost on restart")
	}
}

// bigTable is a table of modules×perModule routes under /t<n>/, each
// module with a candidate, and a catch-all to legacy.
func bigTable(n, modules, perModule int, candidate string) *routes.Doc {
	doc := &routes.Doc{
		Backends: map[string]routes.Backend{fmt.Sprintf("svc-%d", n): {URLs: []string{candidate}}},
		Modules:  []routes.Module{{Name: "default", Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}}}},
	}
	for m := 0; m < modules; m++ {
		mod := routes.Module{Name: fmt.Sprintf("t%d-m%d", n, m), Candidate: fmt.Sprintf("svc-%d", n), Mode: routes.ModeShadow}
		for r := 0; r < perModule; r++ {
			mod.Routes = append(mod.Routes, routes.RouteDef{ID: fmt.Sprintf("t%d-m%d-r%d", n, m, r), Prefix: fmt.Sprintf("/t%d/m%d/r%d", n, m, r)})
		}
		doc.Modules = append(doc.Modules, mod)
	}
	return doc
}

// scrape returns the admin listener's /metrics.
func scrape(t *testing.T, p *proxytest.Proxy) string {
	t.Helper()
	_, body := adminGet(t, p, "/metrics")
	return body
}

// TestChaosMetricChurn: three 2,000-route tables and a return to one route
// leave /metrics and the per-route state the size of the one-route table:
// the series of routes, modules and backends that left are deleted.
func TestChaosMetricChurn(t *testing.T) {
	p, c, svc := stateProxy(t, "")
	ctx := context.Background()
	small := bigTable(0, 1, 1, svc)
	touch := func(n int) {
		for _, path := range []string{"/", fmt.Sprintf("/t%d/m0/r0", n)} {
			if resp, _ := proxytest.Get(t, p.URL+path, nil); resp.StatusCode != 200 {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
		}
	}
	if _, err := c.ReplaceTable(ctx, small, 0); err != nil {
		t.Fatal(err)
	}
	touch(0)
	_, _ = c.Table(ctx)
	base := scrape(t, p)
	baseFB, baseShadow := p.RouteStateSizes()
	for n := 1; n <= 3; n++ {
		if _, err := c.ReplaceTable(ctx, bigTable(n, 200, 10, svc), 0); err != nil {
			t.Fatalf("table %d: %v", n, err)
		}
		touch(n)
	}
	peak := scrape(t, p)
	if _, err := c.ReplaceTable(ctx, small, 0); err != nil {
		t.Fatal(err)
	}
	touch(0)
	_, _ = c.Table(ctx)
	after := scrape(t, p)
	fb, shadow := p.RouteStateSizes()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	lines := func(s string) int { return strings.Count(s, "\n") }
	// The Go and process collectors' lines do not change with the table;
	// the admin API's own request series may gain a few.
	okSize := lines(after) <= lines(base)+50 && len(after) <= len(base)+8<<10
	leftover := 0
	for _, l := range strings.Split(after, "\n") {
		if strings.Contains(l, `route="t1-`) || strings.Contains(l, `route="t2-`) || strings.Contains(l, `route="t3-`) ||
			strings.Contains(l, `backend="svc-1"`) || strings.Contains(l, `backend="svc-3"`) {
			leftover++
		}
	}
	chaostest.Report(t, okSize && leftover == 0 && fb <= baseFB && shadow <= baseShadow,
		"three 2,000-route tables (200 modules, their own backend) then back to one route",
		"/metrics within 50 lines and 8 KiB of the one-route size, no series of the removed routes or backends, per-route state pruned",
		fmt.Sprintf("/metrics %d lines %d bytes at one route, %d lines %d bytes at the peak, %d lines %d bytes after; %d leftover series; fallback modules %d→%d, shadow routes %d→%d; heap in use %d MiB",
			lines(base), len(base), lines(peak), len(peak), lines(after), len(after), leftover, baseFB, fb, baseShadow, shadow, ms.HeapInuse>>20))
}

// TestAuditPagesThroughAPI: the admin client follows the audit log's Link
// cursor page by page and gets every change once, newest first; a bad
// cursor or an unknown parameter is a 400.
func TestAuditPagesThroughAPI(t *testing.T) {
	p, c, _ := stateProxy(t, "")
	ctx := context.Background()
	for w := 1; w <= 30; w++ {
		if _, err := c.Canary(ctx, "orders", w); err != nil {
			t.Fatal(err)
		}
	}
	var versions []int64
	cursor, pages := "", 0
	for {
		page, next, err := c.AuditPage(ctx, "orders", 7, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			versions = append(versions, e.Version)
		}
		pages++
		if next == "" {
			break
		}
		cursor = next
		if pages > 20 {
			t.Fatal("the cursor does not end")
		}
	}
	if len(versions) != 31 || pages != 5 {
		t.Fatalf("%d entries over %d pages: %v", len(versions), pages, versions)
	}
	for i, v := range versions {
		if v != int64(32-i) {
			t.Fatalf("entry %d is version %d: %v", i, v, versions)
		}
	}
	for _, q := range []string{"before=abc", "before=0", "limit=0", "befor=12"} {
		resp, _ := adminDo(t, http.MethodGet, p.AdminURL+"/v1/audit?"+q, proxytest.Token, "")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %d", q, resp.StatusCode)
		}
	}
}

// TestPhasePollingLogsNoInfo: components poll their phase and heartbeat
// their registration several times a second; those requests log at debug,
// while a change of phase still logs at info.
func TestPhasePollingLogsNoInfo(t *testing.T) {
	p := proxytest.Start(t, proxytest.Config{})
	c := p.Admin(t)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := c.Phase(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Phases(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ack(ctx, "orders", "inventory", 0); err != nil {
			t.Fatal(err)
		}
		if err := c.Register(ctx, "inventory", "http://127.0.0.1:9", 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetPhase(ctx, "orders", 1, 0); err != nil {
		t.Fatal(err)
	}
	infoPolls, debugPolls, changes := 0, 0, 0
	for _, l := range p.Log.Lines() {
		if l["msg"] != "request" {
			continue
		}
		path, _ := l["path"].(string)
		poll := l["method"] == http.MethodGet && strings.HasPrefix(path, "/v1/phases") ||
			strings.Contains(path, "/acks/") || strings.HasPrefix(path, "/v1/services/")
		switch {
		case poll && l["level"] == "INFO":
			infoPolls++
		case poll && l["level"] == "DEBUG":
			debugPolls++
		case l["method"] == http.MethodPut && path == "/v1/phases/orders" && l["level"] == "INFO":
			changes++
		}
	}
	if infoPolls != 0 || debugPolls != 80 || changes != 1 {
		t.Fatalf("%d polls logged at INFO, %d at DEBUG (want 0 and 80); %d phase changes at INFO (want 1)", infoPolls, debugPolls, changes)
	}
}

// TestReloadThroughSymlinkSwap: a routes file that is a symlink into a
// data dir, swapped as Kubernetes updates a ConfigMap volume (a new dir,
// then the ..data link renamed over the old one), is reloaded, though no
// event names the file itself.
func TestReloadThroughSymlinkSwap(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	table := extractedTable(svc.URL, "")
	onLegacy := strings.Replace(table, "mode: extracted", "mode: legacy", 1)
	dir := t.TempDir()
	cm := filepath.Join(dir, "config")
	write := func(version, content string) {
		data := filepath.Join(cm, "..v"+version)
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "routes.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(cm, "..data_tmp")
		if err := os.Symlink("..v"+version, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(cm, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("1", onLegacy)
	if err := os.Symlink("..data/routes.yaml", filepath.Join(cm, "routes.yaml")); err != nil {
		t.Fatal(err)
	}
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir, Tune: func(c *proxy.Config) {
		c.RoutesFile = filepath.Join(cm, "routes.yaml")
	}})
	if got := servedBy(t, p.URL+"/api/orders/1"); got != "legacy" {
		t.Fatalf("start: served by %q", got)
	}
	write("2", table)
	proxytest.Eventually(t, 10*time.Second, func() bool { return servedBy(t, p.URL+"/api/orders/1") == "orders-svc" },
		"the swapped ConfigMap was not reloaded")
}

// TestReloadBesideBusyFiles changes the routes file while another file in
// its directory (an access log, say) is written every 20 ms: the reload
// must still happen. The watcher used to restart its settle delay on every
// change in the directory, so a busy neighbour kept the file from ever
// being reread.
func TestReloadBesideBusyFiles(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	table := extractedTable(svc.URL, "")
	dir := t.TempDir()
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir, Routes: strings.Replace(table, "mode: extracted", "mode: legacy", 1)})
	if got := servedBy(t, p.URL+"/api/orders/1"); got != "legacy" {
		t.Fatalf("start: served by %q", got)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.Create(filepath.Join(dir, "busy.log"))
		if err != nil {
			return
		}
		defer f.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fmt.Fprintln(f, "a line")
			}
		}
	}()
	defer func() { close(stop); <-done }()
	p.WriteRoutes(t, table)
	proxytest.Eventually(t, 10*time.Second, func() bool { return servedBy(t, p.URL+"/api/orders/1") == "orders-svc" },
		"the routes file was not reloaded while a neighbour was being written")
}
