package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

// isolate points the config at a temporary data dir and away from the
// developer's environment.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("STRANGLER_CONFIG", "")
	t.Setenv("STRANGLER_DATA_DIR", dir)
	t.Setenv("STRANGLER_LOG_LEVEL", "error")
	return dir
}

func sqliteTable(t *testing.T, dsn, ddl string, inserts ...string) {
	t.Helper()
	gdb := changefeedtest.Open(t, dsn)
	changefeedtest.Must(t, gdb.Exec(ddl).Error)
	for _, q := range inserts {
		changefeedtest.Must(t, gdb.Exec(q).Error)
	}
}

func TestVerifyCommand(t *testing.T) {
	dir := isolate(t)
	src := "sqlite:" + filepath.Join(dir, "src.db")
	dst := "sqlite:" + filepath.Join(dir, "dst.db")
	sqliteTable(t, src, "CREATE TABLE products (id INTEGER PRIMARY KEY, title TEXT, price TEXT)",
		"INSERT INTO products VALUES (1, 'Mug', '3.50'), (2, 'Cup', '2.00'), (3, 'Pot', '10')")
	sqliteTable(t, dst, "CREATE TABLE items (sku TEXT PRIMARY KEY, name TEXT, price_cents INTEGER)",
		"INSERT INTO items VALUES ('SKU-1', 'Mug', 350), ('SKU-2', 'Cup', 200), ('SKU-3', 'Pot', 1000)")
	args := []string{"verify", "--source-dsn", src, "--source-table", "products", "--target-dsn", dst, "--target-table", "items",
		"--target-key", "sku", "--key-format", "SKU-%s", "--column", "name=title", "--column", "price_cents=price:cents:int"}

	out, errOut, code := runCLI(t, args...)
	if code != 0 || !strings.Contains(out, "result: in sync") {
		t.Fatalf("in sync: exit %d\n%s%s", code, out, errOut)
	}

	gdb := changefeedtest.Open(t, dst)
	changefeedtest.Must(t, gdb.Exec("UPDATE items SET price_cents = 1 WHERE sku = 'SKU-2'").Error)
	out, errOut, code = runCLI(t, append(args, "-o", "json")...)
	if code != ExitDrift {
		t.Fatalf("drift: exit %d, want %d\n%s%s", code, ExitDrift, out, errOut)
	}
	if !strings.Contains(errOut, "strangler: drift found in 1 of 1 checks") {
		t.Fatalf("stderr %q", errOut)
	}
	var reps []struct {
		Drift   bool `json:"drift"`
		Changed []struct {
			Key string `json:"key"`
		} `json:"changed"`
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if len(reps) != 1 || !reps[0].Drift || len(reps[0].Changed) != 1 || reps[0].Changed[0].Key != "SKU-2" {
		t.Fatalf("report %s", out)
	}

	// Bad invocations are usage errors.
	for _, bad := range [][]string{
		{"verify"},
		{"verify", "--source-table", "products", "--column", "nope"},
		{"verify", "--source-table", "products", "-o", "xml"},
		{"verify", "missing-check"},
	} {
		if _, errOut, code := runCLI(t, bad...); code != 2 || !strings.HasPrefix(errOut, "strangler: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a one-line cause", bad, code, errOut)
		}
	}
}

func TestBackfillCommand(t *testing.T) {
	dir := isolate(t)
	dsn := "sqlite:" + filepath.Join(dir, "app.db")
	sqliteTable(t, dsn, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)",
		"INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Brian', 'b@example.com'), (3, 'Cy', 'cy@example.com')")
	out, errOut, code := runCLI(t, "backfill", "--dsn", dsn, "--table", "customers", "--columns", "id,name", "--rename", "name=full_name",
		"--aggregate-type", "customer", "--chunk-size", "2", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var res []struct {
		Rows, Events, Chunks int
		Done                 bool
	}
	changefeedtest.Must(t, json.Unmarshal([]byte(out), &res))
	if len(res) != 1 || res[0].Rows != 3 || res[0].Events != 3 || res[0].Chunks != 2 || !res[0].Done {
		t.Fatalf("result %s", out)
	}
	gdb := changefeedtest.Open(t, dsn)
	var payloads []string
	changefeedtest.Must(t, gdb.Raw("SELECT payload FROM outbox WHERE aggregatetype = 'customer' ORDER BY seq").Pluck("payload", &payloads).Error)
	if len(payloads) != 3 || payloads[0] != `{"full_name":"Ada","id":1}` {
		t.Fatalf("payloads %v", payloads)
	}
	// A second run finds the job done.
	out, _, code = runCLI(t, "backfill", "--dsn", dsn, "--table", "customers", "--aggregate-type", "customer")
	if code != 0 || !strings.Contains(out, "done (resumed)") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, "backfill"); code != 2 || !strings.Contains(errOut, "name a job") {
		t.Fatalf("no job: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, "backfill", "--table", "x;y"); code != 2 || !strings.Contains(errOut, "table:") {
		t.Fatalf("bad table: exit %d, %q", code, errOut)
	}
}

// TestUpParts runs the broker and relay parts of `strangler up` on free
// ports, as up does, and checks that the printed addresses are the bound
// ones and that an event written to the monolith's outbox reaches the
// broker.
func TestUpParts(t *testing.T) {
	dir := isolate(t)
	t.Setenv("STRANGLER_BROKER_ADDR", "127.0.0.1:0")
	t.Setenv("STRANGLER_RELAY_METRICS_ADDR", "127.0.0.1:0")
	cfg, err := config.Load(config.LoadOptions{})
	changefeedtest.Must(t, err)
	comps := serveParts(t, cfg, "broker", "relay")
	brokerAddr, relayAddr := comps[0].Addr(), comps[1].Addr()
	if !strings.HasPrefix(brokerAddr, "kafka://127.0.0.1:") || strings.HasSuffix(brokerAddr, ":0") ||
		!strings.HasSuffix(relayAddr, "/metrics") || strings.Contains(relayAddr, ":0/") {
		t.Fatalf("addresses %q %q", brokerAddr, relayAddr)
	}
	resp, err := http.Get(relayAddr)
	changefeedtest.Must(t, err)
	resp.Body.Close()

	// The relay migrates the outbox into the monolith's database.
	dsn := "sqlite:" + filepath.Join(dir, "monolith.db")
	gdb := changefeedtest.Open(t, dsn)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		st, err := db.MigrateStatus(context.Background(), dsn, outbox.Migrations())
		return err == nil && st[0].Pending == 0, fmt.Sprintf("outbox not migrated: %v %v", st, err)
	})
	ev, _ := changefeed.NewEvent("order", "o-1", "order.placed", map[string]int{"total": 1})
	ev.Source = "test"
	changefeedtest.Must(t, db.Transact(context.Background(), gdb, func(ctx context.Context) error {
		return outbox.AddContext(ctx, gdb, ev)
	}))
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		var pos int64
		changefeedtest.Must(t, gdb.Raw("SELECT COALESCE(MAX(position), 0) FROM outbox_relay").Scan(&pos).Error)
		return pos >= 1, "the relay has not published the event"
	})
	msgs := changefeedtest.ReadTopic(t, strings.TrimPrefix(brokerAddr, "kafka://"), "strangler.order")
	if len(msgs) != 1 || string(msgs[0].Key) != "o-1" {
		t.Fatalf("broker holds %v", msgs)
	}
}

// serveParts serves the registered parts of up that names name, in that
// order, on cfg, as up does, and returns their components once up would
// print their lines. They stop when the test ends, which fails if serve
// reports an error.
func serveParts(t *testing.T, cfg *config.Config, names ...string) []Component {
	t.Helper()
	var parts []upPart
	for _, name := range names {
		i := slices.IndexFunc(upParts, func(p upPart) bool { return p.name == name })
		if i < 0 {
			t.Fatalf("no part of up is named %q", name)
		}
		parts = append(parts, upParts[i])
	}
	env := &UpEnv{cfg: cfg, log: changefeedtest.Logger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	printed := make(chan []Component, 1)
	go func() { done <- serve(ctx, env, parts, func(comps []Component) { printed <- comps }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case comps := <-printed:
		return comps
	case err := <-done:
		done <- err
		t.Fatalf("serve = %v before it printed", err)
		return nil
	}
}

// TestConfigPrintRedactsListDSNs checks that DSNs inside backfill jobs and
// verify checks are printed without their passwords.
func TestConfigPrintRedactsListDSNs(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "strangler.yaml")
	changefeedtest.Must(t, os.WriteFile(file, []byte(`
backfill:
  jobs:
    - {name: p, table: products, dsn: "postgres://app:hunter2@db/mono"}
verify:
  checks:
    - {name: v, source: {table: a}, target: {table: b, dsn: "postgres://svc:hunter2@db/svc"}}
`), 0o600))
	out, errOut, code := runCLI(t, "--config", file, "config", "print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "postgres://app:xxxxx@db/mono") || !strings.Contains(out, "postgres://svc:xxxxx@db/svc") {
		t.Fatalf("config print:\n%s", out)
	}
}
