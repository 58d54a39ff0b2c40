package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// startProxyCLI runs `strangler proxy --config file` in process until the
// test ends or stop is called, and waits until `strangler routes list
// --config file` finds it.
func startProxyCLI(t *testing.T, file string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &proxytest.Buffer{}
	done := make(chan int, 1)
	go func() { done <- Run(ctx, []string{"proxy", "--config", file, "--log-level", "warn"}, io.Discard, logs) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("strangler proxy did not stop; its log:\n%s", logs)
			}
		})
	}
	t.Cleanup(stop)
	proxytest.Eventually(t, 60*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("strangler proxy exited %d: %s", code, logs)
		default:
		}
		code, _, _ := runRoutesCLI("routes", "list", "--config", file)
		return code == 0
	}, "strangler routes list --config %s finds the proxy", file)
	return stop
}

// TestRoutesFindsProxy: the operator commands find a proxy's admin API
// through the proxy's config, and through its data dir when the proxy
// listens where the config does not say (port 0).
func TestRoutesFindsProxy(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	fixed, zero := filepath.Join(dir, "fixed.yaml"), filepath.Join(dir, "zero.yaml")
	tests := []struct {
		name      string
		file      string // the proxy's config
		adminAddr string
		// args find the proxy, without --admin and --token.
		args []string
	}{
		{"config names the admin address", fixed, lifecycletest.FreeAddr(t), []string{"--config", fixed}},
		{"port 0, found by the config's data dir", zero, "127.0.0.1:0", []string{"--config", zero}},
		{"port 0, found by --data-dir", zero, "127.0.0.1:0", []string{"--data-dir", dataDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("STRANGLER_CONFIG", "")
			file := tt.file
			cfg := "data_dir: " + dataDir + "\nproxy:\n  addr: 127.0.0.1:0\n  admin_addr: " + tt.adminAddr + "\n  legacy: " + legacy.URL + "\n"
			if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			stop := startProxyCLI(t, file)
			for _, cmd := range [][]string{{"routes", "list"}, {"routes", "export"}} {
				code, out, errOut := runRoutesCLI(append(cmd, tt.args...)...)
				if code != 0 || !strings.Contains(out, "default") {
					t.Errorf("%v %v: exit %d: %s %s", cmd, tt.args, code, out, errOut)
				}
			}
			stop()
			if _, err := os.Stat(filepath.Join(dataDir, adminAddrFile)); !os.IsNotExist(err) {
				t.Errorf("the stopped proxy left its address file: %v", err)
			}
			if tt.args[0] != "--config" {
				// With --data-dir alone and no address file, the CLI falls
				// back to the default admin address, which another test of
				// the same run (the guides' `strangler up`) may serve.
				return
			}
			code, _, errOut := runRoutesCLI(append([]string{"routes", "list"}, tt.args...)...)
			if code != 1 || !strings.Contains(errOut, "cannot reach the proxy's admin API") {
				t.Errorf("after the proxy stopped: exit %d, %s", code, errOut)
			}
		})
	}
}

// initProject runs `strangler init` in a temp dir, moves the proxy's
// listeners to free ports in the config it writes, and returns the
// config's path.
func initProject(t *testing.T, legacy, spec string) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, errOut := runRoutesCLI("init", "--legacy", legacy, "--openapi", spec, "--dir", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	cfg := filepath.Join(dir, "strangler.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "addr: 127.0.0.1:8080", "addr: "+lifecycletest.FreeAddr(t), 1)
	s = strings.Replace(s, "admin_addr: 127.0.0.1:8081", "admin_addr: "+lifecycletest.FreeAddr(t), 1)
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// moduleNames lists the modules of the table that the proxy serves.
func moduleNames(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errOut := runRoutesCLI(append([]string{"routes", "export", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	var doc routes.Doc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("export -o json: %v: %s", err, out)
	}
	var names []string
	for _, m := range doc.Modules {
		names = append(names, m.Name)
	}
	return names
}

// waitModules waits until the proxy serves exactly the modules want.
func waitModules(t *testing.T, want string, args ...string) {
	t.Helper()
	var got []string
	proxytest.Eventually(t, 30*time.Second, func() bool {
		got = moduleNames(t, args...)
		return strings.Join(got, ",") == want
	}, "the proxy serves the modules %s", want)
}

// TestRoutesEditFileManaged starts `strangler proxy` on the config and
// routes file that `strangler init` wrote, with its admin API on a port
// that is not the default, and edits the table with the CLI: it finds the
// proxy through --config alone, edits the routes file (which keeps its
// comments, and the catch-all last), and returns once the proxy has
// reloaded it, so that the next command finds the edit.
func TestRoutesEditFileManaged(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "articles-svc")
	cfg := initProject(t, legacy.URL, "testdata/init/blog.swagger.json")
	routesFile := filepath.Join(filepath.Dir(cfg), "routes.yaml")
	startProxyCLI(t, cfg)
	c := []string{"--config", cfg}
	run := func(args ...string) (int, string, string) {
		return runRoutesCLI(append(append([]string{"routes"}, args...), c...)...)
	}
	waitModules(t, "articles,users,default", c...)

	steps := []struct {
		args []string
		want string
		// modules are those the proxy serves afterwards.
		modules string
	}{
		{[]string{"add-module", "admin", "--prefix", "/api/admin", "--methods", "get,post", "--candidate", svc.URL}, "module admin added (prefix /api/admin) in " + routesFile, "articles,users,admin,default"},
		{[]string{"set-candidate", "articles", svc.URL}, "module articles: candidate admin-candidate", "articles,users,admin,default"},
		{[]string{"set-candidate", "users", "users-svc"}, "module users: candidate users-svc", "articles,users,admin,default"},
		{[]string{"remove-module", "users"}, "module users removed", "articles,admin,default"},
	}
	for _, s := range steps {
		code, out, errOut := run(s.args...)
		if code != 0 || !strings.Contains(out, s.want) || !strings.Contains(out, "; the proxy serves it (table version ") {
			t.Fatalf("routes %v: exit %d, stdout %q, stderr %q; want %q, served", s.args, code, out, errOut, s.want)
		}
		// The edit serves when the command returns: no waiting.
		if got := strings.Join(moduleNames(t, c...), ","); got != s.modules {
			t.Fatalf("after %v the proxy serves modules %s, want %s", s.args, got, s.modules)
		}
	}
	// An edit that changes nothing does not wait for a reload that does
	// not come.
	code, out, errOut := run("set-candidate", "articles", svc.URL)
	if code != 0 || !strings.Contains(out, "module articles: candidate admin-candidate in "+routesFile+"; the proxy reloads the file when it changes") {
		t.Errorf("set-candidate again: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	b, err := os.ReadFile(routesFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# The proxy's route table (docs/proxy.md), written by strangler init\n") {
		t.Errorf("the routes file's leading comment is no longer first:\n%s", b)
	}
	for _, want := range []string{"# The proxy's route table (docs/proxy.md), written by strangler init", "# Articles and their slugs.",
		"{id: admin, methods: [GET, POST], prefix: /api/admin}", "admin-candidate: {urls: ['" + svc.URL + "']}", "users-svc: {service: users-svc}"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("routes file lacks %q:\n%s", want, b)
		}
	}
	// A module operation works on the edited table, and the module's
	// candidate serves.
	if code, _, errOut := run("flip", "articles"); code != 0 {
		t.Fatalf("flip: %s", errOut)
	}
	code, out, _ = run("show", "articles")
	if code != 0 || !strings.Contains(out, "candidate  admin-candidate") || !strings.Contains(out, "mode       extracted") {
		t.Errorf("show articles: %d %s", code, out)
	}

	// An edit made while the file changes is refused, and the file keeps
	// the other change.
	concurrent := string(b) + "# edited by hand meanwhile\n"
	beforeTableWrite = func() {
		if err := os.WriteFile(routesFile, []byte(concurrent), 0o644); err != nil {
			t.Error(err)
		}
	}
	code, _, errOut = run("add-module", "late", "--prefix", "/late")
	beforeTableWrite = nil
	if code != 1 || !strings.Contains(errOut, "changed while the edit was made") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("concurrent edit: exit %d, %q", code, errOut)
	}
	if now, _ := os.ReadFile(routesFile); string(now) != concurrent {
		t.Errorf("the refused edit changed the file:\n%s", now)
	}

	// Bad edits are one line and a non-zero exit, and leave the file as
	// it is.
	errorCases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"add-module", "bad", "--prefix", "api/bad"}, 1, "must start with /"},
		{[]string{"add-module", "articles", "--prefix", "/x"}, 1, `module "articles" is already in the table`},
		{[]string{"add-module", "nopfx"}, 2, "add-module needs --prefix"},
		{[]string{"add-module", "Bad Name", "--prefix", "/x"}, 1, "must be lower-case letters"},
		{[]string{"add-module", "dup", "--prefix", "/api/admin", "--methods", "GET"}, 1, "match the same requests"},
		{[]string{"set-candidate", "nope", svc.URL}, 1, `no module "nope"`},
		{[]string{"set-candidate", "articles", "ftp://x"}, 1, "scheme must be http or https"},
		{[]string{"set-candidate", "articles"}, 2, "set-candidate needs a MODULE and a URL or SERVICE"},
		{[]string{"remove-module", "nope"}, 1, `no module "nope"`},
		{[]string{"export", "-o", "xml"}, 2, "-o must be yaml or json"},
	}
	for _, ec := range errorCases {
		code, _, errOut := run(ec.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != ec.code || !strings.HasPrefix(lines[0], "strangler: ") || !strings.Contains(lines[0], ec.want) {
			t.Errorf("routes %v: exit %d, stderr %q; want exit %d and a line with %q", ec.args, code, errOut, ec.code, ec.want)
		}
	}
	if now, _ := os.ReadFile(routesFile); string(now) != concurrent {
		t.Errorf("a refused edit changed the file:\n%s", now)
	}
	code, out, _ = run("export")
	if code != 0 || !strings.Contains(out, "name: admin") || !strings.Contains(out, "{id: default, prefix: /}") {
		t.Errorf("export: %d %s", code, out)
	}
}

// TestRoutesEditServedFile edits the routes file of a proxy that was given
// one directly (not through the config): the admin API names the file.
func TestRoutesEditServedFile(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: "modules: [{name: default, routes: [{id: default, prefix: /}]}]\n"})
	admin := []string{"--admin", p.AdminAddr(), "--token", proxytest.Token, "--data-dir", t.TempDir()}
	code, out, errOut := runRoutesCLI(append([]string{"routes", "add-module", "orders", "--prefix", "/api/orders"}, admin...)...)
	if code != 0 || !strings.Contains(out, "in "+p.RoutesFile+", the proxy's routes file; the proxy serves it") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if got := strings.Join(moduleNames(t, admin...), ","); got != "orders,default" {
		t.Fatalf("after add-module the proxy serves modules %s", got)
	}

	// A routes file that is not where the CLI runs (another host, say) is
	// refused with how to go on.
	if err := os.Rename(p.RoutesFile, p.RoutesFile+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runRoutesCLI(append([]string{"routes", "remove-module", "orders"}, admin...)...)
	if code != 1 || !strings.Contains(errOut, "which is not here") || !strings.Contains(errOut, "run the command where the proxy runs") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("routes file elsewhere: exit %d, %q", code, errOut)
	}
}

// TestRoutesEditAdminManaged edits a table that the admin API manages:
// the CLI replaces it on the condition that it has not changed since it
// was read.
func TestRoutesEditAdminManaged(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL})
	admin := []string{"--admin", p.AdminAddr(), "--token", proxytest.Token, "--data-dir", t.TempDir()}
	run := func(args ...string) (int, string, string) {
		return runRoutesCLI(append(append([]string{"routes"}, args...), admin...)...)
	}
	start := moduleNames(t, admin...)
	if len(start) != 1 {
		t.Fatalf("the default table has modules %v", start)
	}
	catchAll := start[0]
	steps := []struct {
		args    []string
		want    string
		modules string
	}{
		{[]string{"add-module", "orders", "--prefix", "/api/orders", "--candidate", svc.URL}, "module orders added (prefix /api/orders) (table version 2)", "orders," + catchAll},
		{[]string{"add-module", "customers", "--prefix", "/api/customers", "--methods", "GET"}, "(table version 3)", "orders,customers," + catchAll},
		{[]string{"set-candidate", "customers", "customers"}, "module customers: candidate customers (table version 4)", "orders,customers," + catchAll},
		{[]string{"remove-module", "orders"}, "module orders removed (table version 5)", "customers," + catchAll},
	}
	for _, s := range steps {
		code, out, errOut := run(s.args...)
		if code != 0 || !strings.Contains(out, s.want) {
			t.Fatalf("routes %v: exit %d, stdout %q, stderr %q; want %q", s.args, code, out, errOut, s.want)
		}
		if got := strings.Join(moduleNames(t, admin...), ","); got != s.modules {
			t.Fatalf("after %v: modules %s, want %s", s.args, got, s.modules)
		}
	}
	code, out, _ := run("history", "--limit", "1")
	if code != 0 || !strings.Contains(out, "-orders") {
		t.Errorf("history: %d %s", code, out)
	}

	// A change made between the CLI's read and its write wins; the edit is
	// refused and not applied.
	beforeTableWrite = func() {
		if code, _, errOut := run("shadow", "customers"); code != 0 {
			t.Errorf("shadow meanwhile: %s", errOut)
		}
	}
	code, _, errOut := run("add-module", "late", "--prefix", "/late")
	beforeTableWrite = nil
	if code != 1 || !strings.Contains(errOut, "the route table changed") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("concurrent edit: exit %d, %q", code, errOut)
	}
	if got := strings.Join(moduleNames(t, admin...), ","); got != "customers,"+catchAll {
		t.Errorf("the refused edit was applied: %s", got)
	}
	code, _, errOut = run("remove-module", catchAll)
	if code != 0 {
		t.Fatalf("remove the catch-all: %s", errOut)
	}
	code, _, errOut = run("remove-module", "customers")
	if code != 1 || !strings.Contains(errOut, "the table's only module") {
		t.Errorf("remove the last module: %d %s", code, errOut)
	}
}

// TestRoutesValidate lists every problem of a routes file and exits 1, or
// says the file is valid.
func TestRoutesValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		file string
		code int
		// out are lines of stdout, in order; stderr is one line with err.
		out []string
		err string
	}{
		{"valid", write("ok.yaml", "modules: [{name: web, routes: [{id: web, prefix: /}]}]\n"), 0,
			[]string{"ok.yaml: valid, 1 modules, 1 routes"}, ""},
		{"no catch-all", write("nocatch.yaml", "modules: [{name: api, routes: [{id: api, prefix: /api}]}]\n"), 0,
			[]string{"nocatch.yaml: valid, 1 modules, 1 routes", "warning: no route takes prefix /"}, ""},
		{"every problem", "../../proxy/routes/testdata/invalid/overlap-and-fields.yaml", 1, []string{
			`modules[a].candidate: backend "nowhere" is not defined`,
			`modules[a].routes[a-bad].path: must start with /, not "api/x"`,
			`routes: routes "a-orders" (module a, prefix /api/orders) and "b-orders"`,
		}, "overlap-and-fields.yaml: 3 problems, listed above"},
		{"unknown field", write("typo.yaml", "modules: [{name: a, routs: []}]\n"), 1, []string{"field routs not found"}, "1 problems"},
		{"not yaml", write("bad.yaml", "modules: [\n"), 1, nil, "route table is not valid YAML"},
		{"missing", filepath.Join(dir, "none.yaml"), 1, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("STRANGLER_CONFIG", "")
			code, out, errOut := runRoutesCLI("routes", "validate", tt.file, "--data-dir", dir)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tt.code, out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(tt.out) > 0 && len(lines) != len(tt.out) {
				t.Errorf("stdout has %d lines, want %d:\n%s", len(lines), len(tt.out), out)
			}
			for i, w := range tt.out {
				if i < len(lines) && !strings.Contains(lines[i], w) {
					t.Errorf("stdout line %d %q lacks %q", i, lines[i], w)
				}
			}
			if tt.err == "" && errOut != "" || tt.err != "" && (strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.err)) {
				t.Errorf("stderr %q, want one line with %q", errOut, tt.err)
			}
		})
	}
}
