package domain

// StockAggregate is the aggregate type of the inventory's events, and so
// their topic: <topic_prefix>.stock.
const StockAggregate = "stock"

// StockKey is the aggregate id of a stock level, "P-000042/AMS1": the
// value of inv_stock's generated stock_key column.
func StockKey(ref, warehouse string) string { return ref + "/" + warehouse }

// StockEvent is the payload of the stock.adjusted, stock.reserved,
// stock.released and stock.shipped events: the level after the change and
// the movement that changed it. A backfill's stock.snapshot event has the
// same fields but no movement.
type StockEvent struct {
	Level
	// Movement is the change; nil in a snapshot.
	Movement *Movement `json:"movement,omitempty"`
}

// Movement is one entry of the movement journal, as events carry it.
type Movement struct {
	// Kind is adjust, reserve, release or ship.
	Kind string `json:"kind"`
	// Quantity is the units moved; an adjustment's is signed.
	Quantity int `json:"quantity"`
	// Reference is the order ("order/42") or the reason for an adjustment.
	Reference string `json:"reference,omitempty"`
}
