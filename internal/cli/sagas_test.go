package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/saga"
)

// TestSagasCommands drives a real orchestrator's admin API, on loopback,
// through `strangler sagas`: list, show, retry and abort of manual sagas,
// -o json, and one-line errors with a non-zero exit for bad input.
func TestSagasCommands(t *testing.T) {
	t.Setenv(EnvSagasURL, "")
	ctx := context.Background()
	dsn := dbtest.SQLiteDSN(t)
	if err := db.MigrateUp(ctx, dsn, saga.Migrations()); err != nil {
		t.Fatal(err)
	}
	gdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(gdb) })
	var broken atomic.Bool
	broken.Store(true)
	def := &saga.Definition{Name: "order", Steps: []saga.Step{
		{Name: "reserve", Retry: saga.Retry{MaxAttempts: 1},
			Do: func(context.Context, *saga.Exec) error { return nil },
			Compensate: func(context.Context, *saga.Exec) error {
				if broken.Load() {
					return errors.New("inventory unreachable")
				}
				return nil
			}},
		{Name: "pay", Do: func(context.Context, *saga.Exec) error { return saga.Permanent(errors.New("over the credit limit")) }},
	}}
	o, err := saga.New(saga.Config{Store: saga.NewGormStore(gdb), Definitions: []*saga.Definition{def}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done; _ = o.Close() })
	for _, id := range []string{"order-1", "order-2"} {
		if _, err := o.Start(ctx, "order", id, map[string]int{"customer": 7}); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		s, err := o.Wait(wctx, id)
		cancel()
		if err != nil || s.State != saga.Manual {
			t.Fatalf("%s: %v %+v", id, err, s)
		}
	}
	e := httpx.NewEcho(httpx.Discard, prometheus.NewRegistry(), 1<<20)
	const token = "cli-saga-token"
	saga.RegisterAdmin(e.Group("/v1"), o, func() string { return token })
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	common := []string{"--data-dir", t.TempDir(), "--service", srv.URL + "/v1", "--token", token}
	run := func(args ...string) (int, string, string) {
		return runRoutesCLI(append(append([]string{"sagas"}, args...), common...)...)
	}
	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"list"}, []string{"ID", "STATE", "order-2", "order-1", "manual", "compensate step reserve: inventory unreachable"}},
		{[]string{"list", "--limit", "1"}, []string{"order-2", "more: --before"}},
		{[]string{"show", "order-1"}, []string{"state    manual", `data     {"customer":7}`, "started", "failed", "over the credit limit", "compensation_failed", "→ manual"}},
		{[]string{"abort", "order-2", "--reason", "released by hand"}, []string{"order-2: aborted"}},
	}
	for _, s := range steps {
		code, out, errOut := run(s.args...)
		if code != 0 {
			t.Fatalf("sagas %v: exit %d: %s", s.args, code, errOut)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("sagas %v: output lacks %q:\n%s", s.args, w, out)
			}
		}
	}

	broken.Store(false)
	code, out, errOut := run("retry", "order-1", "-o", "json")
	var s saga.Saga
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.ID != "order-1" || s.State != saga.Compensating {
		t.Fatalf("retry -o json: %d %s %s", code, out, errOut)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if got, err := o.Wait(wctx, "order-1"); err != nil || got.State != saga.Compensated {
		t.Fatalf("after retry: %v %+v", err, got)
	}
	code, out, _ = run("list", "--state", "compensated", "-o", "json")
	var p saga.Page
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || len(p.Sagas) != 1 || p.Sagas[0].ID != "order-1" {
		t.Fatalf("list --state compensated -o json: %d %s", code, out)
	}

	bad := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown state", []string{"list", "--state", "lost"}, 2, `--state must be one of running, compensating, manual, completed, compensated, aborted, not "lost"`},
		{"bad output", []string{"list", "-o", "yaml"}, 2, `-o must be table or json, not "yaml"`},
		{"no id", []string{"show"}, 2, "want exactly one saga id"},
		{"bad limit", []string{"list", "--limit", "501"}, 2, "--limit must be between 1 and 500"},
		{"unknown saga", []string{"show", "order-9"}, 1, "Not found: saga \"order-9\": saga not found"},
		{"retry of a compensated saga", []string{"retry", "order-1"}, 1, "Saga state: saga order-1 is compensated: only a manual saga can be retried"},
	}
	for _, b := range bad {
		code, _, errOut := run(b.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != b.code || !strings.Contains(lines[0], b.want) || !strings.HasPrefix(lines[0], "strangler: ") {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and one line with %q", b.name, code, errOut, b.code, b.want)
		}
	}
	code, _, errOut = runRoutesCLI("sagas", "list", "--data-dir", t.TempDir(), "--service", srv.URL+"/v1", "--token", "wrong")
	if code != 1 || !strings.Contains(errOut, "Unauthorized: the bearer token is not valid") {
		t.Errorf("wrong token: exit %d, %q", code, errOut)
	}
	code, _, errOut = runRoutesCLI("sagas", "list", "--data-dir", t.TempDir(), "--token", token)
	if code != 2 || !strings.Contains(errOut, "no saga service: pass --service URL or set $STRANGLER_SAGAS_URL") {
		t.Errorf("without a service: exit %d, %q", code, errOut)
	}
	srv.Close()
	code, _, errOut = run("list")
	if code != 1 || !strings.Contains(errOut, "cannot reach the saga service at "+srv.URL) {
		t.Errorf("service down: exit %d, %q", code, errOut)
	}
}
