// Package store reads and writes the orders module's tables, orders and
// order_lines. Every statement runs on db.Conn, so it joins the transaction
// the context carries.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// Row is one row of orders.
type Row struct {
	ID            int64      `gorm:"column:id;primaryKey"`
	CustomerID    int64      `gorm:"column:customer_id"`
	CustomerEmail string     `gorm:"column:customer_email"`
	Status        int        `gorm:"column:status"`
	Currency      string     `gorm:"column:currency"`
	TotalCents    int64      `gorm:"column:total_cents"`
	PlacedAt      time.Time  `gorm:"column:placed_at"`
	PaidAt        *time.Time `gorm:"column:paid_at"`
	ShippedAt     *time.Time `gorm:"column:shipped_at"`
	CancelledAt   *time.Time `gorm:"column:cancelled_at"`
	Version       int        `gorm:"column:version"`
	UpdatedAt     time.Time  `gorm:"column:updated_at"`
}

// TableName is the orders table.
func (Row) TableName() string { return "orders" }

// LineRow is one row of order_lines.
type LineRow struct {
	OrderID        int64  `gorm:"column:order_id;primaryKey"`
	LineNo         int    `gorm:"column:line_no;primaryKey"`
	SKU            string `gorm:"column:sku"`
	ProductRef     string `gorm:"column:product_ref"`
	ProductName    string `gorm:"column:product_name"`
	UnitPriceCents int64  `gorm:"column:unit_price_cents"`
	Quantity       int    `gorm:"column:quantity"`
	LineTotalCents int64  `gorm:"column:line_total_cents"`
	WarehouseCode  string `gorm:"column:warehouse_code"`
}

// TableName is the order lines table.
func (LineRow) TableName() string { return "order_lines" }

const columns = "id, customer_id, customer_email, status, currency, total_cents, placed_at, paid_at, shipped_at, cancelled_at, version, updated_at"

// Store is the module's data access.
type Store struct {
	db *gorm.DB
	// ids are the order IDs drawn from the orders table's sequence and not
	// used yet, on Postgres (see InsertOrder).
	mu  sync.Mutex
	ids []int64
}

// New returns a store on gdb.
func New(gdb *gorm.DB) *Store { return &Store{db: gdb} }

// idBlock is how many order IDs InsertOrder draws from the sequence at a
// time on Postgres.
const idBlock = 32

// insertColumns are the columns of orders that InsertOrder writes; the
// stamps of later statuses start NULL.
var insertColumns = []string{"id", "customer_id", "customer_email", "status", "currency", "total_cents", "placed_at", "version", "updated_at"}

// orders holds the orders a transaction places on Postgres until its
// commit, which writes them with their lines (see InsertOrder).
var orders = db.Batch[Row]{Table: "orders", Columns: insertColumns, Values: func(r Row) []any {
	return []any{r.ID, r.CustomerID, r.CustomerEmail, r.Status, r.Currency, r.TotalCents, r.PlacedAt, r.Version, r.UpdatedAt}
}}

// InsertOrder adds an order in the transaction ctx carries and sets its
// ID. On SQLite it inserts the row now. On Postgres it takes the ID from a
// block drawn from the table's sequence ahead (a round trip per idBlock
// orders) and queues the row, which the commit writes in the one statement
// that writes the order's lines, the stock's journal and the events: a
// round trip less per order. The transaction does not see the row before
// then. IDs still come from the sequence, so they never collide with
// those of other writers; like any sequence's, they have gaps (the rest of
// a block when the process stops) and do not follow the commits' order,
// here also across processes, each of which holds its own block.
func (s *Store) InsertOrder(ctx context.Context, r *Row) error {
	if db.DialectOf(s.db) == db.Postgres {
		id, err := s.nextID(ctx)
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		r.ID = id
		if err := orders.Add(ctx, *r); err != nil {
			return fmt.Errorf("insert order %d: %w", id, err)
		}
		return nil
	}
	// Row, not gorm's reflective Scan, reads the id: fewer allocations on
	// the path of every order.
	err := db.Conn(ctx, s.db).Raw(`INSERT INTO orders (customer_id, customer_email, status, currency, total_cents, placed_at, version, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, r.CustomerID, r.CustomerEmail, r.Status, r.Currency, r.TotalCents, r.PlacedAt, r.Version, r.UpdatedAt).Row().Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	return nil
}

// nextID returns an unused order ID from the block, drawing the next block
// on ctx's connection (inside the caller's transaction, so that it never
// waits for a second connection of the pool) when it is empty. nextval is
// not rolled back, so the IDs stay drawn whatever becomes of the
// transaction.
func (s *Store) nextID(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		var ids []int64
		err := db.Conn(ctx, s.db).Raw("SELECT nextval(pg_get_serial_sequence('orders', 'id')) FROM generate_series(1, ?)", idBlock).Scan(&ids).Error
		if err != nil {
			return 0, fmt.Errorf("draw %d order ids: %w", idBlock, err)
		}
		if len(ids) == 0 {
			return 0, errors.New("draw order ids: the sequence returned none")
		}
		s.ids = ids
	}
	id := s.ids[0]
	s.ids = s.ids[1:]
	return id, nil
}

// lines holds the lines of the orders a transaction places until its
// commit, which writes them with the transaction's other queued rows, the
// stock's journal and the events (see db.Batch).
var lines = db.Batch[LineRow]{
	Table:   "order_lines",
	Columns: []string{"order_id", "line_no", "sku", "product_ref", "product_name", "unit_price_cents", "quantity", "line_total_cents", "warehouse_code"},
	Values: func(l LineRow) []any {
		return []any{l.OrderID, l.LineNo, l.SKU, l.ProductRef, l.ProductName, l.UnitPriceCents, l.Quantity, l.LineTotalCents, l.WarehouseCode}
	},
}

// QueueLines adds the lines of order orderID, in the transaction ctx
// carries, when it commits, and sets their OrderID. The transaction does
// not see them before then.
func (s *Store) QueueLines(ctx context.Context, orderID int64, rows []LineRow) error {
	for i := range rows {
		rows[i].OrderID = orderID
	}
	if err := lines.Add(ctx, rows...); err != nil {
		return fmt.Errorf("insert lines of order %d: %w", orderID, err)
	}
	return nil
}

// Get returns order id; ok is false when there is none.
func (s *Store) Get(ctx context.Context, id int64) (r Row, ok bool, err error) {
	err = db.Conn(ctx, s.db).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("get order %d: %w", id, err)
	}
	return r, true, nil
}

// Lines returns the lines of the given orders, by order and line number.
func (s *Store) Lines(ctx context.Context, orderIDs ...int64) ([]LineRow, error) {
	var rows []LineRow
	if len(orderIDs) == 0 {
		return rows, nil
	}
	if err := db.Conn(ctx, s.db).Where("order_id IN ?", orderIDs).Order("order_id, line_no").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("lines of orders: %w", err)
	}
	return rows, nil
}

// List returns up to limit orders with an id below beforeID (0: no bound),
// newest first.
func (s *Store) List(ctx context.Context, customerID int64, status int, beforeID int64, limit int) ([]Row, error) {
	q := db.Conn(ctx, s.db)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	if customerID != 0 {
		q = q.Where("customer_id = ?", customerID)
	}
	if status != 0 {
		q = q.Where("status = ?", status)
	}
	var rows []Row
	if err := q.Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return rows, nil
}

// Transition moves order id from one of the statuses in from to status to,
// stamping column stampCol, and returns the new row; ok is false when the
// order is missing or not in one of from. The UPDATE locks the order until
// the transaction ends, so two concurrent transitions of one order run one
// after the other and the second sees the first's status.
func (s *Store) Transition(ctx context.Context, id int64, from []int, to int, stampCol string, now time.Time) (r Row, ok bool, err error) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(from)), ", ")
	args := []any{to, now, now, id}
	for _, f := range from {
		args = append(args, f)
	}
	var rows []Row
	sql := "UPDATE orders SET status = ?, " + stampCol + " = ?, updated_at = ?, version = version + 1 WHERE id = ? AND status IN (" + ph + ") RETURNING " + columns
	if err := db.Conn(ctx, s.db).Raw(sql, args...).Scan(&rows).Error; err != nil {
		return Row{}, false, fmt.Errorf("order %d to status %d: %w", id, to, err)
	}
	if len(rows) == 0 {
		return Row{}, false, nil
	}
	return rows[0], true, nil
}
