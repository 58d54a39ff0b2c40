// Package store reads and writes the inventory service's tables. Every
// statement runs on db.Conn, so it joins the transaction the context
// carries: the service's own writes, or the consumer's transaction when the
// anti-corruption layer applies the monolith's events.
//
// As in the monolith, each change of an item is one guarded UPDATE (or
// upsert) whose WHERE clause states what the change needs; the database
// checks it on the row it locks, so concurrent writers never oversell, on
// Postgres in READ COMMITTED as on SQLite.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
)

// Row is one row of items.
type Row struct {
	SKU       string    `gorm:"column:sku;primaryKey"`
	Warehouse string    `gorm:"column:warehouse;primaryKey"`
	OnHand    int       `gorm:"column:on_hand"`
	Reserved  int       `gorm:"column:reserved"`
	Version   int       `gorm:"column:version"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

// TableName is the items table.
func (Row) TableName() string { return "items" }

// Item converts the row.
func (r Row) Item() domain.Item {
	return domain.Item{SKU: r.SKU, Warehouse: r.Warehouse, OnHand: r.OnHand, Reserved: r.Reserved, Version: r.Version, UpdatedAt: r.UpdatedAt.UTC()}
}

type warehouseRow struct {
	ID      string `gorm:"column:id"`
	Name    string `gorm:"column:name"`
	Country string `gorm:"column:country"`
}

// MovementRow is one row of the movement journal.
type MovementRow struct {
	ID        int64     `gorm:"column:id;primaryKey"`
	SKU       string    `gorm:"column:sku"`
	Warehouse string    `gorm:"column:warehouse"`
	Kind      string    `gorm:"column:kind"`
	Quantity  int       `gorm:"column:quantity"`
	Reference string    `gorm:"column:reference"`
	Origin    string    `gorm:"column:origin"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

// TableName is the journal table.
func (MovementRow) TableName() string { return "movements" }

const columns = "sku, warehouse, on_hand, reserved, version, updated_at"

// Store is the service's data access.
type Store struct{ db *gorm.DB }

// New returns a store on gdb.
func New(gdb *gorm.DB) *Store { return &Store{db: gdb} }

func (s *Store) conn(ctx context.Context) *gorm.DB { return db.Conn(ctx, s.db) }

// Warehouses returns every warehouse, by id.
func (s *Store) Warehouses(ctx context.Context) ([]domain.Warehouse, error) {
	var rows []warehouseRow
	if err := s.conn(ctx).Table("warehouses").Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list warehouses: %w", err)
	}
	out := make([]domain.Warehouse, 0, len(rows))
	for _, r := range rows {
		out = append(out, domain.Warehouse{ID: r.ID, Name: r.Name, Country: r.Country})
	}
	return out, nil
}

// WarehouseExists reports whether id names a warehouse.
func (s *Store) WarehouseExists(ctx context.Context, id string) (bool, error) {
	var n int64
	if err := s.conn(ctx).Table("warehouses").Where("id = ?", id).Count(&n).Error; err != nil {
		return false, fmt.Errorf("find warehouse %s: %w", id, err)
	}
	return n > 0, nil
}

// ProductKnown reports whether the service knows the SKU.
func (s *Store) ProductKnown(ctx context.Context, sku string) (bool, error) {
	var n int64
	if err := s.conn(ctx).Table("products").Where("sku = ?", sku).Count(&n).Error; err != nil {
		return false, fmt.Errorf("find product %s: %w", sku, err)
	}
	return n > 0, nil
}

// UpsertProduct records a SKU the service may hold stock of.
func (s *Store) UpsertProduct(ctx context.Context, sku string, active bool, now time.Time) error {
	err := s.conn(ctx).Exec(`INSERT INTO products (sku, active, updated_at) VALUES (?, ?, ?)
ON CONFLICT (sku) DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at`, sku, active, now).Error
	if err != nil {
		return fmt.Errorf("record product %s: %w", sku, err)
	}
	return nil
}

// Item returns one item; ok is false when there is none.
func (s *Store) Item(ctx context.Context, sku, warehouse string) (r Row, ok bool, err error) {
	err = s.conn(ctx).Where("sku = ? AND warehouse = ?", sku, warehouse).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("stock of %s in %s: %w", sku, warehouse, err)
	}
	return r, true, nil
}

// Items returns a SKU's items, by warehouse.
func (s *Store) Items(ctx context.Context, sku string) ([]Row, error) {
	var rows []Row
	if err := s.conn(ctx).Where("sku = ?", sku).Order("warehouse").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("stock of %s: %w", sku, err)
	}
	return rows, nil
}

// guarded runs a statement with RETURNING and returns the row it changed;
// ok is false when it matched nothing.
func (s *Store) guarded(ctx context.Context, sql string, args ...any) (Row, bool, error) {
	var rows []Row
	if err := s.conn(ctx).Raw(sql+" RETURNING "+columns, args...).Scan(&rows).Error; err != nil {
		return Row{}, false, err
	}
	if len(rows) == 0 {
		return Row{}, false, nil
	}
	return rows[0], true, nil
}

// versionGuard adds "AND version = ?" when a version is expected.
func versionGuard(sql string, args []any, expected *int) (string, []any) {
	if expected == nil {
		return sql, args
	}
	return sql + " AND version = ?", append(args, *expected)
}

// AddOnHand adds n > 0 units, creating the item when it does not exist.
// With an expected version it only updates an item at that version (an
// item that does not exist is at version 0).
func (s *Store) AddOnHand(ctx context.Context, sku, warehouse string, n int, expected *int, now time.Time) (Row, bool, error) {
	sql := `INSERT INTO items (sku, warehouse, on_hand, reserved, version, updated_at) VALUES (?, ?, ?, 0, 1, ?)
ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = items.on_hand + excluded.on_hand, version = items.version + 1, updated_at = excluded.updated_at`
	args := []any{sku, warehouse, n, now}
	if expected != nil {
		if *expected == 0 {
			sql = `INSERT INTO items (sku, warehouse, on_hand, reserved, version, updated_at) VALUES (?, ?, ?, 0, 1, ?)
ON CONFLICT (sku, warehouse) DO NOTHING`
		} else {
			sql += " WHERE items.version = ?"
			args = append(args, *expected)
		}
	}
	r, ok, err := s.guarded(ctx, sql, args...)
	if err != nil {
		return Row{}, false, fmt.Errorf("add %d of %s in %s: %w", n, sku, warehouse, err)
	}
	return r, ok, nil
}

// RemoveOnHand takes n > 0 units off hand, only if as many are not
// reserved (and the item is at the expected version, if given).
func (s *Store) RemoveOnHand(ctx context.Context, sku, warehouse string, n int, expected *int, now time.Time) (Row, bool, error) {
	sql, args := versionGuard(`UPDATE items SET on_hand = on_hand - ?, version = version + 1, updated_at = ?
WHERE sku = ? AND warehouse = ? AND on_hand - reserved >= ?`, []any{n, now, sku, warehouse, n}, expected)
	r, ok, err := s.guarded(ctx, sql, args...)
	if err != nil {
		return Row{}, false, fmt.Errorf("remove %d of %s in %s: %w", n, sku, warehouse, err)
	}
	return r, ok, nil
}

// Reserve reserves n units, only if as many are available.
func (s *Store) Reserve(ctx context.Context, sku, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE items SET reserved = reserved + ?, version = version + 1, updated_at = ?
WHERE sku = ? AND warehouse = ? AND on_hand - reserved >= ?`, n, now, sku, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("reserve %d of %s in %s: %w", n, sku, warehouse, err)
	}
	return r, ok, nil
}

// Release returns n reserved units to available, only if as many are
// reserved.
func (s *Store) Release(ctx context.Context, sku, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE items SET reserved = reserved - ?, version = version + 1, updated_at = ?
WHERE sku = ? AND warehouse = ? AND reserved >= ?`, n, now, sku, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("release %d of %s in %s: %w", n, sku, warehouse, err)
	}
	return r, ok, nil
}

// Ship takes n reserved units off hand, only if as many are reserved.
func (s *Store) Ship(ctx context.Context, sku, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE items SET on_hand = on_hand - ?, reserved = reserved - ?, version = version + 1, updated_at = ?
WHERE sku = ? AND warehouse = ? AND reserved >= ?`, n, n, now, sku, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("ship %d of %s from %s: %w", n, sku, warehouse, err)
	}
	return r, ok, nil
}

// ApplyDelta changes an existing item by the given amounts, as a movement
// that happened elsewhere; ok is false when the item does not exist or the
// result would break 0 <= reserved <= on_hand.
func (s *Store) ApplyDelta(ctx context.Context, sku, warehouse string, onHand, reserved int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE items SET on_hand = on_hand + ?, reserved = reserved + ?, version = version + 1, updated_at = ?
WHERE sku = ? AND warehouse = ? AND reserved + ? >= 0 AND reserved + ? <= on_hand + ?`,
		onHand, reserved, now, sku, warehouse, reserved, reserved, onHand)
	if err != nil {
		return Row{}, false, fmt.Errorf("apply %+d/%+d to %s in %s: %w", onHand, reserved, sku, warehouse, err)
	}
	return r, ok, nil
}

// SetState writes an item's whole state, creating it when missing.
func (s *Store) SetState(ctx context.Context, it domain.Item) (Row, error) {
	r, _, err := s.guarded(ctx, `INSERT INTO items (sku, warehouse, on_hand, reserved, version, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (sku, warehouse) DO UPDATE SET on_hand = excluded.on_hand, reserved = excluded.reserved, version = excluded.version, updated_at = excluded.updated_at`,
		it.SKU, it.Warehouse, it.OnHand, it.Reserved, it.Version, it.UpdatedAt)
	if err != nil {
		return Row{}, fmt.Errorf("set stock of %s in %s: %w", it.SKU, it.Warehouse, err)
	}
	return r, nil
}

// Candidates returns the warehouses with at least n units of the SKU
// available, the most available first.
func (s *Store) Candidates(ctx context.Context, sku string, n int) ([]string, error) {
	var ids []string
	err := s.conn(ctx).Model(&Row{}).Where("sku = ? AND on_hand - reserved >= ?", sku, n).
		Order("on_hand - reserved DESC, warehouse").Pluck("warehouse", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("warehouses with %d of %s: %w", n, sku, err)
	}
	return ids, nil
}

// Journal records a movement.
func (s *Store) Journal(ctx context.Context, m *MovementRow) error {
	if err := s.conn(ctx).Create(m).Error; err != nil {
		return fmt.Errorf("journal %s of %s: %w", m.Kind, m.SKU, err)
	}
	return nil
}

// Movements returns an item's journal, oldest first.
func (s *Store) Movements(ctx context.Context, sku, warehouse string) ([]MovementRow, error) {
	var ms []MovementRow
	if err := s.conn(ctx).Where("sku = ? AND warehouse = ?", sku, warehouse).Order("id").Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("movements of %s in %s: %w", sku, warehouse, err)
	}
	return ms, nil
}

// Reservation returns the warehouse of an earlier reservation of the SKU
// for reference, in warehouse if that is not empty; ok is false when there
// is none.
func (s *Store) Reservation(ctx context.Context, reference, sku, warehouse string, quantity int) (wh string, ok bool, err error) {
	q := s.conn(ctx).Table("reservations").Where("reference = ? AND sku = ? AND quantity = ?", reference, sku, quantity)
	if warehouse != "" {
		q = q.Where("warehouse = ?", warehouse)
	}
	var whs []string
	if err := q.Order("warehouse").Limit(1).Pluck("warehouse", &whs).Error; err != nil {
		return "", false, fmt.Errorf("find reservation %s of %s: %w", reference, sku, err)
	}
	if len(whs) == 0 {
		return "", false, nil
	}
	return whs[0], true, nil
}

// RecordReservation remembers a reservation for reference, adding to an
// earlier one of the same SKU and warehouse.
func (s *Store) RecordReservation(ctx context.Context, reference, sku, warehouse string, quantity int, now time.Time) error {
	err := s.conn(ctx).Exec(`INSERT INTO reservations (reference, sku, warehouse, quantity, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (reference, sku, warehouse) DO UPDATE SET quantity = reservations.quantity + excluded.quantity`, reference, sku, warehouse, quantity, now).Error
	if err != nil {
		return fmt.Errorf("record reservation %s of %s: %w", reference, sku, err)
	}
	return nil
}

// SettleReservation forgets what a release or shipment for reference
// consumed.
func (s *Store) SettleReservation(ctx context.Context, reference, sku, warehouse string, quantity int) error {
	c := s.conn(ctx)
	if err := c.Exec(`UPDATE reservations SET quantity = quantity - ? WHERE reference = ? AND sku = ? AND warehouse = ? AND quantity > ?`,
		quantity, reference, sku, warehouse, quantity).Error; err != nil {
		return fmt.Errorf("settle reservation %s of %s: %w", reference, sku, err)
	}
	if err := c.Exec(`DELETE FROM reservations WHERE reference = ? AND sku = ? AND warehouse = ? AND quantity <= ?`,
		reference, sku, warehouse, quantity).Error; err != nil {
		return fmt.Errorf("settle reservation %s of %s: %w", reference, sku, err)
	}
	return nil
}
