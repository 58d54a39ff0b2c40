package orders

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/backfill"
)

// OrdersJob is the name of the backfill job of the monolith's orders.
const OrdersJob = "orders-orders"

// OrdersBackfillJob is the snapshot of the monolith's orders that gives
// the orders service its first copy: one order.snapshot event per row of
// orders, keyed by the legacy id, which the forward sync imports into the
// service's event store as order.imported under that id. The orders table
// alone has no lines; LinesMap adds them, so a job run without it gives
// snapshots that the forward sync refuses for an order it does not have.
// The backfill pages by id, resumes after the last committed chunk, and
// drops the snapshot of an order that changed while its chunk was in
// flight (the live event carries the newer state). DSN is left empty: the
// monolith's database.
func OrdersBackfillJob() backfill.Job {
	return backfill.Job{
		Name:          OrdersJob,
		Table:         "orders",
		Key:           "id",
		AggregateType: OrderAggregate,
		EventType:     OrderSnapshot,
		Source:        "monolith.orders",
	}
}

// legacyLines reads the lines of order id from the monolith's database.
func legacyLines(ctx context.Context, monolithDB *gorm.DB, id any) ([]LegacyLine, error) {
	var lines []LegacyLine
	if err := monolithDB.WithContext(ctx).Table("order_lines").Where("order_id = ?", id).Order("line_no").Find(&lines).Error; err != nil {
		return nil, fmt.Errorf("lines of order %v: %w", id, err)
	}
	return lines, nil
}

// LinesMap is the payload mapping of OrdersBackfillJob: the orders row as
// it is, with the order's lines from order_lines in monolithDB under
// "lines", as the monolith's own order events carry them. Lines do not
// change once the order is placed, so reading them beside the chunk's
// snapshot gives the order as it was.
func LinesMap(monolithDB *gorm.DB) func(backfill.Row) (any, error) {
	return func(row backfill.Row) (any, error) {
		lines, err := legacyLines(context.Background(), monolithDB, row["id"])
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(row)+1)
		for k, v := range row {
			out[k] = v
		}
		out["lines"] = lines
		return out, nil
	}
}

// intOf reads an integer column, as the drivers give it.
func intOf(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int:
		return int64(x), nil
	case float64:
		return int64(x), nil
	case []byte:
		return strconv.ParseInt(strings.TrimSpace(string(x)), 10, 64)
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, fmt.Errorf("%v (%T) is not an integer", v, v)
}
