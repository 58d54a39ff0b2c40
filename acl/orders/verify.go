package orders

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
)

// VerifyCheck is the check `strangler verify orders` runs: it compares the
// monolith's orders (source, monolith.dsn) with the orders service's read
// model of an order by id, order_views in its database serviceDSN, by the
// legacy id, on the customer, the status, the total and the lines. The
// source side needs VerifyRow as its row mapping: the status is a legacy
// code there and the lines are in another table.
func VerifyCheck(serviceDSN string) verify.Check {
	return verify.Check{
		Name:   "orders",
		Source: verify.Endpoint{Table: "orders", Key: "id"},
		Target: verify.Endpoint{DSN: serviceDSN, Table: "order_views", Key: "id"},
		Columns: []verify.Column{
			{Target: "customer_id", Type: "int"},
			{Target: "status", Type: "text"},
			{Target: "total_cents", Type: "int"},
			{Target: "lines", Type: "json"},
		},
	}
}

// VerifyRow is VerifyCheck's row mapping: it turns a row of the monolith's
// orders into order_views' terms, the status code into the service's
// status and the order's lines, read from order_lines in monolithDB, into
// the JSON the read model keeps (the service's lines in line order, the
// monolith's redundant line totals as they are, so that a wrong one
// shows). It reads the lines of each row it maps, one query per order,
// and so a re-read of a differing key (--recheck) sees them as they are
// then.
func VerifyRow(monolithDB *gorm.DB) func(verify.Row) (verify.Row, error) {
	return func(row verify.Row) (verify.Row, error) {
		code, err := intOf(row["status"])
		if err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		st, err := StateOf(int(code))
		if err != nil {
			return nil, err
		}
		legacy, err := legacyLines(context.Background(), monolithDB, row["id"])
		if err != nil {
			return nil, err
		}
		var lines []domain.Line
		for _, l := range legacy {
			lines = append(lines, domain.Line{LineNo: l.LineNo, SKU: l.SKU, ProductRef: l.ProductRef, ProductName: l.ProductName,
				UnitPriceCents: l.UnitPriceCents, Quantity: l.Quantity, LineTotalCents: l.LineTotalCents, Warehouse: l.Warehouse})
		}
		js, err := json.Marshal(lines)
		if err != nil {
			return nil, fmt.Errorf("lines: %w", err)
		}
		return verify.Row{"customer_id": row["customer_id"], "status": string(st), "total_cents": row["total_cents"], "lines": string(js)}, nil
	}
}

// Verify runs VerifyCheck on the two databases, as `strangler verify
// orders` does: monolithDB holds the orders tables, serviceDB the read
// model.
func Verify(ctx context.Context, monolithDB, serviceDB *gorm.DB, opt verify.Options) (*verify.Report, error) {
	ch := VerifyCheck("")
	m := ch.Mapping()
	m.Row = VerifyRow(monolithDB)
	rep, err := verify.Compare(ctx, verify.Side{DB: monolithDB, Table: ch.Source.Table, Key: ch.Source.Key},
		verify.Side{DB: serviceDB, Table: ch.Target.Table, Key: ch.Target.Key}, m, opt)
	if err != nil {
		return nil, fmt.Errorf("verify orders: %w", err)
	}
	return rep, nil
}
