package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/internal/cli"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestOrdersBackfillAndVerifyCommands runs `strangler backfill
// orders-orders` and `strangler verify orders` on the shop's defaults,
// with the mappings the shop registers: the snapshots carry each order's
// lines, so that the forward sync imports them, and verify then finds the
// service's read model in sync, and a corrupted row as drift (exit 3),
// with --recheck too.
func TestOrdersBackfillAndVerifyCommands(t *testing.T) {
	dir := cli.Isolate(t)
	monoDSN := "sqlite:" + filepath.Join(dir, "monolith.db")
	svcDSN := "sqlite:" + filepath.Join(dir, "orders.db")
	t.Setenv("STRANGLER_MONOLITH_DSN", monoDSN)
	t.Setenv("STRANGLER_SERVICES_ORDERS_DSN", svcDSN)
	shop := shoptest.New(t, monoDSN, shoptest.WithSeed())
	var ids []int64
	for _, qty := range []int{1, 2, 3} {
		var o aclorders.LegacyOrder
		shop.Post("/api/orders", map[string]any{"customer_id": 2, "lines": []any{map[string]any{"sku": "COF-ETH-250", "quantity": qty}}}).Expect(http.StatusCreated).Decode(&o)
		ids = append(ids, o.ID)
	}
	shop.Post(fmt.Sprintf("/api/orders/%d/pay", ids[1]), nil).Expect(http.StatusOK)
	changefeedtest.Must(t, shop.DB().Exec("DELETE FROM outbox").Error)

	out, errOut, code := cli.RunCLI(t, "backfill", aclorders.OrdersJob, "-o", "json", "--log-level", "error")
	if code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}

	// The forward sync applies the snapshots, as its consumer would.
	svc := changefeedtest.Open(t, svcDSN, append(orders.Migrations(), aclorders.Migrations(), consumer.Migrations())...)
	fwd, err := aclorders.NewForward(svc, changefeedtest.Logger())
	changefeedtest.Must(t, err)
	var rows []struct {
		ID, Source, Aggregateid, Type, Origin, Payload string
	}
	changefeedtest.Must(t, shop.DB().Raw("SELECT id, source, aggregateid, type, origin, payload FROM outbox WHERE type = ? ORDER BY seq", aclorders.OrderSnapshot).Scan(&rows).Error)
	if len(rows) != len(ids) {
		t.Fatalf("backfill wrote %d order snapshots for %d orders", len(rows), len(ids))
	}
	ctx := context.Background()
	for _, r := range rows {
		ev := changefeed.Event{ID: uuid.MustParse(r.ID), Source: r.Source, AggregateType: aclorders.OrderAggregate, AggregateID: r.Aggregateid,
			Type: r.Type, Origin: r.Origin, Payload: json.RawMessage(r.Payload)}
		changefeedtest.Must(t, db.Transact(ctx, svc, func(ctx context.Context) error { return fwd.Handle(ctx, db.Conn(ctx, svc), ev) }))
	}
	proj, err := orders.NewProjections(svc, eventsource.RunnerConfig{}, eventsource.RunnerOptions{})
	changefeedtest.Must(t, err)
	defer proj.Close()
	changefeedtest.Must(t, proj.CatchUp(ctx))

	out, errOut, code = cli.RunCLI(t, "verify", "orders", "--log-level", "error")
	if code != 0 || !strings.Contains(out, "result: in sync") {
		t.Fatalf("verify orders: exit %d\n%s%s", code, out, errOut)
	}
	changefeedtest.Must(t, svc.Exec("UPDATE order_views SET total_cents = 1 WHERE id = ?", ids[1]).Error)
	for _, args := range [][]string{{"verify", "orders", "-o", "json"}, {"verify", "orders", "-o", "json", "--recheck", "10ms"}} {
		out, errOut, code = cli.RunCLI(t, append(args, "--log-level", "error")...)
		if code != cli.ExitDrift {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, cli.ExitDrift, out, errOut)
		}
		var reps []struct {
			Drift   bool `json:"drift"`
			Changed []struct {
				Key     string `json:"key"`
				Columns []struct {
					Column string `json:"column"`
				} `json:"columns"`
			} `json:"changed"`
		}
		changefeedtest.Must(t, json.Unmarshal([]byte(out), &reps))
		if len(reps) != 1 || !reps[0].Drift || len(reps[0].Changed) != 1 || reps[0].Changed[0].Key != fmt.Sprint(ids[1]) || reps[0].Changed[0].Columns[0].Column != "total_cents" {
			t.Fatalf("%v: report %s", args, out)
		}
	}
}
