package arch_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/internal/cli"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// run runs the toolkit's command line, which this test binary builds
// without the shop, to its end.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestToolkitRunsWithoutShop runs the toolkit's operator commands from a
// binary that does not plug in the shop, on a config with no shop
// sections: the proxy in front of a plain HTTP server with a route table
// and an extraction plan of the config's own, routes and phase and status
// against its admin API, verify and backfill on SQLite tables, and the
// help of relay and broker. A shop section is an unknown key here.
func TestToolkitRunsWithoutShop(t *testing.T) {
	t.Setenv("STRANGLER_CONFIG", "")
	dir := t.TempDir()
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "legacy") }))
	defer legacy.Close()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "orders-svc") }))
	defer svc.Close()
	routesFile := filepath.Join(dir, "routes.yaml")
	writeFile(t, routesFile, `
backends:
  orders-svc: {urls: ["`+svc.URL+`"]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    routes: [{id: orders-read, methods: [GET], prefix: /api/orders}]
`)
	file := filepath.Join(dir, "strangler.yaml")
	writeFile(t, file, `
data_dir: `+dir+`
log: {level: error}
proxy:
  addr: 127.0.0.1:0
  admin_addr: 127.0.0.1:0
  legacy: `+legacy.URL+`
  routes_file: `+routesFile+`
  access_log: {enabled: false}
phases:
  modules:
    - {name: orders, read_routes: orders}
`)

	// The effective config has the toolkit's sections alone, and a shop
	// section is refused as an unknown key.
	out, errOut, code := run(t, "--config", file, "config", "print")
	if code != 0 || !strings.Contains(out, "proxy:") || strings.Contains(out, "monolith") || strings.Contains(out, "services:") {
		t.Fatalf("config print: exit %d\n%s\n%s", code, out, errOut)
	}
	shopFile := filepath.Join(dir, "shop.yaml")
	writeFile(t, shopFile, "monolith: {addr: 127.0.0.1:9001}\n")
	if _, errOut, code := run(t, "--config", shopFile, "config", "print"); code != 1 || !strings.Contains(errOut, "monolith") {
		t.Fatalf("a shop section: exit %d, %q; want it refused", code, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lifecycletest.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, []string{"--config", file, "proxy"}, &stdout, &stderr) }()
	addrs := map[string]string{}
	line := regexp.MustCompile(`(?m)^\s+(proxy|admin)\s+http://(\S+)`)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("proxy exited %d: %s", code, stderr.String())
		default:
		}
		for _, m := range line.FindAllStringSubmatch(stdout.String(), -1) {
			addrs[m[1]] = m[2]
		}
		return len(addrs) == 2, stdout.String()
	})
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		status, body, err := get("http://" + addrs["admin"] + "/readyz")
		return err == nil && status == http.StatusOK, fmt.Sprintf("%d %q %v", status, body, err)
	})
	if _, body, err := get("http://" + addrs["proxy"] + "/api/orders/1"); err != nil || body != "legacy" {
		t.Fatalf("before the phase: %q %v, want legacy", body, err)
	}

	admin := []string{"--config", file, "--admin", addrs["admin"]}
	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"routes", "list"}, []string{"default", "orders", "orders-svc"}},
		{[]string{"status"}, []string{"orders", "legacy"}},
		{[]string{"phase", "orders", "flip"}, []string{"orders: phase 4 flip"}},
		{[]string{"status", "orders"}, []string{"orders", "flip"}},
	}
	for _, s := range steps {
		out, errOut, code := run(t, append(s.args, admin...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", s.args, code, out, errOut)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: output lacks %q:\n%s", s.args, w, out)
			}
		}
	}
	if _, body, err := get("http://" + addrs["proxy"] + "/api/orders/1"); err != nil || body != "orders-svc" {
		t.Fatalf("after the flip: %q %v, want orders-svc", body, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("proxy exited %d after its context ended: %s", code, stderr.String())
	}

	// backfill and verify take their databases from flags: there is no
	// legacy database to default to.
	dsn := "sqlite:" + filepath.Join(dir, "app.db")
	gdb, err := db.Open(context.Background(), dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)",
		"CREATE TABLE items_copy (id INTEGER PRIMARY KEY, name TEXT)",
		"INSERT INTO items VALUES (1, 'mug'), (2, 'cup')",
		"INSERT INTO items_copy VALUES (1, 'mug'), (2, 'cup')",
	} {
		if err := gdb.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(gdb); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backfill", "--dsn", dsn, "--table", "items"}, "items"},
		{[]string{"verify", "--source-dsn", dsn, "--source-table", "items", "--target-dsn", dsn, "--target-table", "items_copy"}, "items"},
	} {
		out, errOut, code := run(t, append(c.args, "--config", file)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Fatalf("%v: exit %d\n%s%s", c.args, code, out, errOut)
		}
	}
	// Without a database of their own they say which setting names one.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"backfill", "--table", "items"}, "no database: set --dsn or the job's dsn"},
		{[]string{"verify", "--source-table", "items"}, "no database: set --source-dsn or the check's source.dsn"},
		{[]string{"relay"}, "relay: no database"},
	} {
		_, errOut, code := run(t, append(c.args, "--config", file)...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want 1 with %q", c.args, code, errOut, c.want)
		}
	}
	for _, c := range []string{"relay", "broker", "proxy", "routes", "phase", "status", "verify", "backfill"} {
		out, errOut, code := run(t, c, "--help")
		if code != 0 || !strings.Contains(out, "strangler "+c) {
			t.Errorf("%s --help: exit %d\n%s%s", c, code, out, errOut)
		}
	}
	// The shop's commands are not there.
	for _, c := range []string{"monolith", "service"} {
		if _, _, code := run(t, c); code != 2 {
			t.Errorf("%s: exit %d, want 2 (unknown command)", c, code)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
