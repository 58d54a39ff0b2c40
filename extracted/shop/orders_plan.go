package shop

import (
	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/internal/cli"
)

func init() {
	// The orders backfill adds each order's lines to its snapshot, and the
	// orders check compares them with the service's read model, through
	// mappings a config cannot express.
	cli.RegisterBackfillMap(aclorders.OrdersJob, aclorders.LinesMap)
	cli.RegisterVerifyRow("orders", aclorders.VerifyRow)
}
