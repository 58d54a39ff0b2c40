// Package readmodel is the orders service's query side (CQRS): three
// projections of the order events, each with its own tables
// (migrations/orders), and the queries on them.
//
//   - orders.by_id (order_views): an order by id, with its lines, as the
//     aggregate's state has it;
//   - orders.by_customer (orders_by_customer): each customer's orders;
//   - orders.by_status (orders_by_status): the orders in each status.
//
// An eventsource.Runner keeps them in step with the event store, and
// `strangler projections rebuild orders` rebuilds them from position 0.
package readmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
)

// Projections are the read models, for an eventsource.Runner.
func Projections() []eventsource.Projection {
	return []eventsource.Projection{ByID{}, ByCustomer{}, ByStatus{}}
}

// viewRow is one row of order_views.
type viewRow struct {
	ID            int64      `gorm:"column:id;primaryKey;autoIncrement:false"`
	CustomerID    int64      `gorm:"column:customer_id"`
	CustomerEmail string     `gorm:"column:customer_email"`
	Status        string     `gorm:"column:status"`
	Currency      string     `gorm:"column:currency"`
	TotalCents    int64      `gorm:"column:total_cents"`
	Lines         string     `gorm:"column:lines"`
	PlacedAt      time.Time  `gorm:"column:placed_at"`
	PaidAt        *time.Time `gorm:"column:paid_at"`
	ShippedAt     *time.Time `gorm:"column:shipped_at"`
	CancelledAt   *time.Time `gorm:"column:cancelled_at"`
	Version       int64      `gorm:"column:version"`
	UpdatedAt     time.Time  `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (viewRow) TableName() string { return "order_views" }

func (r viewRow) order() (domain.Order, error) {
	o := domain.Order{ID: r.ID, CustomerID: r.CustomerID, CustomerEmail: r.CustomerEmail, Status: domain.Status(r.Status), Currency: r.Currency,
		TotalCents: r.TotalCents, PlacedAt: r.PlacedAt.UTC(), PaidAt: utc(r.PaidAt), ShippedAt: utc(r.ShippedAt), CancelledAt: utc(r.CancelledAt),
		Version: r.Version, UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Lines), &o.Lines); err != nil {
		return o, fmt.Errorf("order view %d: lines: %w", r.ID, err)
	}
	return o, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ByID projects each order's state into order_views, folding with
// domain.Apply, so that the view is the aggregate's state.
type ByID struct{}

// Name is the projection's checkpoint.
func (ByID) Name() string { return "orders.by_id" }

// Tables is the projection's table.
func (ByID) Tables() []string { return []string{"order_views"} }

// Apply folds ev into the order's row.
func (ByID) Apply(ctx context.Context, tx *gorm.DB, ev eventsource.Event) error {
	if ev.AggregateType != domain.AggregateType {
		return nil
	}
	id, err := orderID(ev)
	if err != nil {
		return err
	}
	var rows []viewRow
	if err := tx.Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return err
	}
	var o domain.Order
	if len(rows) == 1 {
		var err error
		if o, err = rows[0].order(); err != nil {
			return err
		}
	}
	o, err = domain.Apply(o, ev)
	if err != nil {
		return err
	}
	lines, err := json.Marshal(o.Lines)
	if err != nil {
		return err
	}
	row := viewRow{ID: o.ID, CustomerID: o.CustomerID, CustomerEmail: o.CustomerEmail, Status: string(o.Status), Currency: o.Currency,
		TotalCents: o.TotalCents, Lines: string(lines), PlacedAt: o.PlacedAt, PaidAt: o.PaidAt, ShippedAt: o.ShippedAt,
		CancelledAt: o.CancelledAt, Version: o.Version, UpdatedAt: o.UpdatedAt}
	return tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
}

// orderID is the id of the order ev is about.
func orderID(ev eventsource.Event) (int64, error) {
	id, err := strconv.ParseInt(ev.AggregateID, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("order event %s: aggregate id %q is not an order id", ev.Type, ev.AggregateID)
	}
	return id, nil
}

// statusChange returns the order ev is about and the status it moves it
// to, and false for events that move none or are not about an order.
func statusChange(ev eventsource.Event) (int64, domain.Status, bool, error) {
	if ev.AggregateType != domain.AggregateType {
		return 0, "", false, nil
	}
	var st domain.Status
	switch ev.Type {
	case domain.EventPlaced:
		st = domain.StatusPlaced
	case domain.EventImported:
		var p domain.Imported
		if err := ev.Decode(&p); err != nil {
			return 0, "", false, err
		}
		st = p.Status
	case domain.EventPaid:
		st = domain.StatusPaid
	case domain.EventShipped:
		st = domain.StatusShipped
	case domain.EventCancelled:
		st = domain.StatusCancelled
	default:
		return 0, "", false, nil
	}
	id, err := orderID(ev)
	return id, st, err == nil, err
}

// ByCustomer projects each customer's orders into orders_by_customer.
type ByCustomer struct{}

// Name is the projection's checkpoint.
func (ByCustomer) Name() string { return "orders.by_customer" }

// Tables is the projection's table.
func (ByCustomer) Tables() []string { return []string{"orders_by_customer"} }

// Apply adds a placed or imported order to its customer's list and keeps
// its status there.
func (ByCustomer) Apply(ctx context.Context, tx *gorm.DB, ev eventsource.Event) error {
	id, st, ok, err := statusChange(ev)
	if err != nil || !ok {
		return err
	}
	if ev.Type == domain.EventPlaced || ev.Type == domain.EventImported {
		var p domain.Placed
		if err := ev.Decode(&p); err != nil {
			return err
		}
		return tx.Exec("INSERT INTO orders_by_customer (customer_id, order_id, status, total_cents, placed_at) VALUES (?, ?, ?, ?, ?)",
			p.CustomerID, id, string(st), p.TotalCents, p.PlacedAt.UTC()).Error
	}
	return tx.Exec("UPDATE orders_by_customer SET status = ? WHERE order_id = ?", string(st), id).Error
}

// ByStatus projects each order's status into orders_by_status.
type ByStatus struct{}

// Name is the projection's checkpoint.
func (ByStatus) Name() string { return "orders.by_status" }

// Tables is the projection's table.
func (ByStatus) Tables() []string { return []string{"orders_by_status"} }

// Apply records the status each status-changing event leaves.
func (ByStatus) Apply(ctx context.Context, tx *gorm.DB, ev eventsource.Event) error {
	id, st, ok, err := statusChange(ev)
	if err != nil || !ok {
		return err
	}
	return tx.Exec(`INSERT INTO orders_by_status (order_id, status, updated_at) VALUES (?, ?, ?)
ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`, id, string(st), ev.OccurredAt.UTC()).Error
}

// Get returns the order with id from order_views, or domain.ErrNotFound.
func Get(ctx context.Context, gdb *gorm.DB, id int64) (domain.Order, error) {
	var rows []viewRow
	if err := db.Conn(ctx, gdb).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return domain.Order{}, fmt.Errorf("read order %d: %w", id, err)
	}
	if len(rows) == 0 {
		return domain.Order{}, fmt.Errorf("order %d: %w", id, domain.ErrNotFound)
	}
	return rows[0].order()
}

// Summary is one order in a customer's list.
type Summary struct {
	ID         int64         `json:"id" gorm:"column:order_id"`
	CustomerID int64         `json:"customer_id" gorm:"column:customer_id"`
	Status     domain.Status `json:"status" gorm:"column:status"`
	TotalCents int64         `json:"total_cents" gorm:"column:total_cents"`
	PlacedAt   time.Time     `json:"placed_at" gorm:"column:placed_at"`
}

// page is the page size: 0 means 20, at most 100.
func page(limit int) int {
	if limit <= 0 {
		return 20
	}
	return min(limit, 100)
}

// ByCustomerID returns a customer's orders, newest (highest id) first,
// below beforeID when it is not 0.
func ByCustomerID(ctx context.Context, gdb *gorm.DB, customerID, beforeID int64, limit int) ([]Summary, error) {
	q := db.Conn(ctx, gdb).Table("orders_by_customer").Where("customer_id = ?", customerID)
	if beforeID > 0 {
		q = q.Where("order_id < ?", beforeID)
	}
	var out []Summary
	if err := q.Order("order_id DESC").Limit(page(limit)).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("orders of customer %d: %w", customerID, err)
	}
	for i := range out {
		out[i].PlacedAt = out[i].PlacedAt.UTC()
	}
	return out, nil
}

// IDsByStatus returns the ids of the orders in status, newest first, below
// beforeID when it is not 0.
func IDsByStatus(ctx context.Context, gdb *gorm.DB, status domain.Status, beforeID int64, limit int) ([]int64, error) {
	q := db.Conn(ctx, gdb).Table("orders_by_status").Where("status = ?", string(status))
	if beforeID > 0 {
		q = q.Where("order_id < ?", beforeID)
	}
	var out []int64
	if err := q.Order("order_id DESC").Limit(page(limit)).Pluck("order_id", &out).Error; err != nil {
		return nil, fmt.Errorf("orders in status %s: %w", status, err)
	}
	return out, nil
}

// List returns up to limit orders from order_views, newest (highest id)
// first, below beforeID when it is not 0, of one customer and in one
// status when they are not zero.
func List(ctx context.Context, gdb *gorm.DB, customerID int64, status domain.Status, beforeID int64, limit int) ([]domain.Order, error) {
	q := db.Conn(ctx, gdb).Model(&viewRow{})
	if customerID != 0 {
		q = q.Where("customer_id = ?", customerID)
	}
	if status != "" {
		q = q.Where("status = ?", string(status))
	}
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	var rows []viewRow
	if err := q.Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	out := make([]domain.Order, len(rows))
	for i, r := range rows {
		o, err := r.order()
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}
