package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// runRoutesCLI runs the command line in process and returns its exit code and
// output.
func runRoutesCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestRoutesCommands drives a real proxy through `strangler routes`.
func TestRoutesCommands(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: `
backends:
  orders-svc: {urls: ["` + svc.URL + `"]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    routes:
      - {id: orders-read, methods: [GET], prefix: /api/orders}
      - {id: orders-write, methods: [POST], path: /api/orders}
`})
	dataDir := t.TempDir()
	admin := []string{"--data-dir", dataDir, "--admin", p.AdminAddr(), "--token", proxytest.Token}
	run := func(args ...string) (int, string, string) {
		return runRoutesCLI(append(append([]string{"routes"}, args...), admin...)...)
	}

	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"list"}, []string{"MODULE", "orders", "legacy", "orders-svc", "table version 1"}},
		{[]string{"shadow", "orders"}, []string{"orders: shadow (table version 2)"}},
		{[]string{"canary", "orders", "--weight", "25"}, []string{"orders: canary 25% (table version 3)"}},
		{[]string{"show", "orders"}, []string{"mode       canary 25%", "orders-read", "GET prefix /api/orders", "POST /api/orders"}},
		{[]string{"flip", "orders"}, []string{"orders: extracted"}},
		{[]string{"rollback", "orders"}, []string{"orders: legacy"}},
		{[]string{"history", "orders"}, []string{"ACTOR", "rollback", "extracted → legacy", "canary 25% → extracted", "shadow → canary 25%", "legacy → shadow"}},
		{[]string{"diffs", "orders"}, []string{"route orders-read:", "route orders-write:"}},
	}
	for _, s := range steps {
		code, out, errOut := run(s.args...)
		if code != 0 {
			t.Fatalf("routes %v: exit %d: %s", s.args, code, errOut)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("routes %v: output lacks %q:\n%s", s.args, w, out)
			}
		}
	}

	code, out, _ := run("show", "orders", "-o", "json")
	var m api.Module
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m.Mode != "legacy" || len(m.Routes) != 2 {
		t.Fatalf("show -o json: %d %s", code, out)
	}
	code, out, _ = run("history", "-o", "json", "--limit", "2")
	var entries []api.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 2 || entries[0].Action != "rollback" {
		t.Fatalf("history -o json: %d %s", code, out)
	}

	errorCases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"canary", "orders"}, 2, "canary needs --weight"},
		{[]string{"canary", "orders", "--weight", "150"}, 1, "weight: must be 0 to 100"},
		{[]string{"flip", "nope"}, 1, "Not found"},
		{[]string{"flip"}, 2, "needs exactly one MODULE"},
		{[]string{"flip", "default"}, 1, "has no candidate"},
		{[]string{"list", "-o", "xml"}, 2, "-o must be table or json"},
	}
	for _, ec := range errorCases {
		code, _, errOut := run(ec.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != ec.code || !strings.Contains(lines[0], ec.want) || !strings.HasPrefix(lines[0], "strangler: ") {
			t.Errorf("routes %v: exit %d, stderr %q; want exit %d and a line with %q", ec.args, code, errOut, ec.code, ec.want)
		}
	}
	code, _, errOut := runRoutesCLI("routes", "list", "--data-dir", dataDir, "--admin", p.AdminAddr(), "--token", "wrong-token-wrong-token")
	if code != 1 || !strings.Contains(errOut, "Unauthorized") {
		t.Errorf("wrong token: %d %s", code, errOut)
	}
	code, _, errOut = runRoutesCLI("routes", "list", "--data-dir", dataDir, "--admin", "127.0.0.1:1", "--token", proxytest.Token)
	if code != 1 || !strings.Contains(errOut, "cannot reach the proxy's admin API") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("unreachable: %d %q", code, errOut)
	}
	code, _, errOut = runRoutesCLI("routes", "list", "--data-dir", dataDir, "--admin", p.AdminAddr())
	if code != 1 || !strings.Contains(errOut, "no admin token") {
		t.Errorf("no token: %d %q", code, errOut)
	}
	// The token file under the data dir is found without flags.
	if err := os.WriteFile(filepath.Join(dataDir, "admin.token"), []byte(proxytest.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runRoutesCLI("routes", "list", "--data-dir", dataDir, "--admin", p.AdminAddr())
	if code != 0 || !strings.Contains(out, "orders") {
		t.Errorf("token file: %d %s %s", code, out, errOut)
	}

	// apply replaces the table; the proxy's table comes from a file, so
	// the API refuses.
	tableFile := filepath.Join(t.TempDir(), "t.yaml")
	_ = os.WriteFile(tableFile, []byte("modules: [{name: a, routes: [{id: a, prefix: /}]}]\n"), 0o644)
	code, _, errOut = run("apply", "-f", tableFile)
	if code != 1 || !strings.Contains(errOut, "managed by a file") {
		t.Errorf("apply on a file-managed table: %d %s", code, errOut)
	}
	_ = os.WriteFile(tableFile, []byte("modules: [{name: a, routs: []}]\n"), 0o644)
	code, _, errOut = run("apply", "-f", tableFile)
	if code != 1 || !strings.Contains(errOut, "routs") {
		t.Errorf("apply of an invalid file: %d %s", code, errOut)
	}
}

// TestRoutesApply replaces a table that the API manages.
func TestRoutesApply(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL})
	file := filepath.Join(t.TempDir(), "t.yaml")
	_ = os.WriteFile(file, []byte(`
modules:
  - name: web
    routes: [{id: web, prefix: /}]
  - name: api
    routes: [{id: api, prefix: /api}]
`), 0o644)
	code, out, errOut := runRoutesCLI("routes", "apply", "-f", file, "--admin", p.AdminAddr(), "--token", proxytest.Token, "--data-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "version 2, 2 modules") {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	code, out, _ = runRoutesCLI("routes", "history", "--admin", p.AdminAddr(), "--token", proxytest.Token, "--data-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "replace") || !strings.Contains(out, "+api") {
		t.Fatalf("history after apply: %d %s", code, out)
	}
}

// TestShadowSummary: the one-line shadow result of `routes list`, `show`
// and `diffs` names every count that is not zero, inconclusive rechecks
// among them.
func TestShadowSummary(t *testing.T) {
	tests := []struct {
		stats api.ShadowStats
		want  string
	}{
		{api.ShadowStats{}, "-"},
		{api.ShadowStats{Compared: 4, Matches: 4}, "4 compared, 0 mismatched (0.0%)"},
		{api.ShadowStats{Compared: 10, Matches: 5, Mismatches: 1, Settled: 2, Inconclusive: 2, MismatchRate: 0.1, Dropped: 3},
			"10 compared, 1 mismatched (10.0%), 2 settled on recheck, 2 inconclusive (legacy changed before the recheck), 3 dropped"},
	}
	for _, tt := range tests {
		if got := shadowSummary(tt.stats); got != tt.want {
			t.Errorf("shadowSummary(%+v) = %q, want %q", tt.stats, got, tt.want)
		}
	}
}
