// Package store reads and writes the inventory's tables: inv_warehouses,
// inv_stock and inv_movements. Every statement runs on db.Conn, so it joins
// the transaction the context carries.
//
// Each change of a level is one guarded UPDATE (or upsert) whose WHERE
// clause states the condition the change needs, such as enough units
// available. The database checks the condition on the row it locks, so the
// changes are correct under concurrency on Postgres in READ COMMITTED as
// well as on SQLite, without a read-then-write race and without
// serialization failures to retry. Every writer keeps qty_available equal
// to on_hand - reserved.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// Row is one row of inv_stock.
type Row struct {
	ProductRef    string    `gorm:"column:product_ref;primaryKey"`
	WarehouseCode string    `gorm:"column:warehouse_code;primaryKey"`
	OnHand        int       `gorm:"column:on_hand"`
	Reserved      int       `gorm:"column:reserved"`
	QtyAvailable  int       `gorm:"column:qty_available"`
	Version       int       `gorm:"column:version"`
	UpdatedAt     time.Time `gorm:"column:updated_at"`
}

// TableName is the stock table.
func (Row) TableName() string { return "inv_stock" }

// WarehouseRow is one row of inv_warehouses.
type WarehouseRow struct {
	Code    string `gorm:"column:code;primaryKey"`
	Name    string `gorm:"column:name"`
	Country string `gorm:"column:country"`
}

// TableName is the warehouse table.
func (WarehouseRow) TableName() string { return "inv_warehouses" }

// Movement is one row of inv_movements.
type Movement struct {
	ID            int64     `gorm:"column:id;primaryKey"`
	ProductRef    string    `gorm:"column:product_ref"`
	WarehouseCode string    `gorm:"column:warehouse_code"`
	Kind          string    `gorm:"column:kind"`
	Quantity      int       `gorm:"column:quantity"`
	Reference     string    `gorm:"column:reference"`
	CreatedAt     time.Time `gorm:"column:created_at"`
}

// TableName is the journal table.
func (Movement) TableName() string { return "inv_movements" }

const columns = "product_ref, warehouse_code, on_hand, reserved, qty_available, version, updated_at"

// Store is the inventory's data access.
type Store struct{ db *gorm.DB }

// New returns a store on gdb.
func New(gdb *gorm.DB) *Store { return &Store{db: gdb} }

// Warehouses returns every warehouse, by code.
func (s *Store) Warehouses(ctx context.Context) ([]WarehouseRow, error) {
	var rows []WarehouseRow
	if err := db.Conn(ctx, s.db).Order("code").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list warehouses: %w", err)
	}
	return rows, nil
}

// WarehouseExists reports whether code names a warehouse.
func (s *Store) WarehouseExists(ctx context.Context, code string) (bool, error) {
	var n int64
	if err := db.Conn(ctx, s.db).Model(&WarehouseRow{}).Where("code = ?", code).Count(&n).Error; err != nil {
		return false, fmt.Errorf("find warehouse %s: %w", code, err)
	}
	return n > 0, nil
}

// Levels returns the product's levels, by warehouse.
func (s *Store) Levels(ctx context.Context, ref string) ([]Row, error) {
	var rows []Row
	if err := db.Conn(ctx, s.db).Where("product_ref = ?", ref).Order("warehouse_code").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("stock of %s: %w", ref, err)
	}
	return rows, nil
}

// Level returns one level; ok is false when there is none.
func (s *Store) Level(ctx context.Context, ref, warehouse string) (r Row, ok bool, err error) {
	err = db.Conn(ctx, s.db).Where("product_ref = ? AND warehouse_code = ?", ref, warehouse).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("stock of %s in %s: %w", ref, warehouse, err)
	}
	return r, true, nil
}

// Position is where a page of List starts: after this level.
type Position struct {
	ProductRef string `json:"ref"`
	Warehouse  string `json:"wh"`
}

// List returns up to limit levels after pos, ordered by product reference
// and warehouse.
func (s *Store) List(ctx context.Context, warehouse string, inStock *bool, after Position, limit int) ([]Row, error) {
	q := db.Conn(ctx, s.db).Where("(product_ref > ? OR (product_ref = ? AND warehouse_code > ?))", after.ProductRef, after.ProductRef, after.Warehouse)
	if warehouse != "" {
		q = q.Where("warehouse_code = ?", warehouse)
	}
	if inStock != nil {
		if *inStock {
			q = q.Where("qty_available > 0")
		} else {
			q = q.Where("qty_available = 0")
		}
	}
	var rows []Row
	if err := q.Order("product_ref, warehouse_code").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list stock: %w", err)
	}
	return rows, nil
}

// guarded runs an UPDATE ... RETURNING and returns the row it changed; ok
// is false when its WHERE clause matched nothing.
func (s *Store) guarded(ctx context.Context, sql string, args ...any) (Row, bool, error) {
	var rows []Row
	if err := db.Conn(ctx, s.db).Raw(sql+" RETURNING "+columns, args...).Scan(&rows).Error; err != nil {
		return Row{}, false, err
	}
	if len(rows) == 0 {
		return Row{}, false, nil
	}
	return rows[0], true, nil
}

// AddOnHand adds delta > 0 units to a level, creating the level if it does
// not exist.
func (s *Store) AddOnHand(ctx context.Context, ref, warehouse string, delta int, now time.Time) (Row, error) {
	r, _, err := s.guarded(ctx, `INSERT INTO inv_stock (product_ref, warehouse_code, on_hand, reserved, qty_available, version, updated_at)
VALUES (?, ?, ?, 0, ?, 1, ?)
ON CONFLICT (product_ref, warehouse_code) DO UPDATE SET
    on_hand = inv_stock.on_hand + excluded.on_hand,
    qty_available = inv_stock.qty_available + excluded.on_hand,
    version = inv_stock.version + 1,
    updated_at = excluded.updated_at`, ref, warehouse, delta, delta, now)
	if err != nil {
		return Row{}, fmt.Errorf("add %d of %s in %s: %w", delta, ref, warehouse, err)
	}
	return r, nil
}

// RemoveOnHand takes n > 0 units off hand, only if as many are not
// reserved; ok is false when the level is missing or the units are not
// there.
func (s *Store) RemoveOnHand(ctx context.Context, ref, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE inv_stock SET on_hand = on_hand - ?, qty_available = qty_available - ?, version = version + 1, updated_at = ?
WHERE product_ref = ? AND warehouse_code = ? AND on_hand - reserved >= ?`, n, n, now, ref, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("remove %d of %s in %s: %w", n, ref, warehouse, err)
	}
	return r, ok, nil
}

// Reserve reserves n units, only if as many are available; ok is false when
// the level is missing or the units are not available.
func (s *Store) Reserve(ctx context.Context, ref, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE inv_stock SET reserved = reserved + ?, qty_available = qty_available - ?, version = version + 1, updated_at = ?
WHERE product_ref = ? AND warehouse_code = ? AND on_hand - reserved >= ?`, n, n, now, ref, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("reserve %d of %s in %s: %w", n, ref, warehouse, err)
	}
	return r, ok, nil
}

// ReserveMost reserves n units in the warehouse with the most units of the
// product available (ties by code), in one statement; ok is false when no
// warehouse has n available, or when another transaction took the units
// of the one it picked first (Postgres re-checks the guard on the locked
// row, not the choice), so that the caller then tries Candidates.
func (s *Store) ReserveMost(ctx context.Context, ref string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE inv_stock SET reserved = reserved + ?, qty_available = qty_available - ?, version = version + 1, updated_at = ?
WHERE product_ref = ? AND on_hand - reserved >= ? AND warehouse_code = (
    SELECT warehouse_code FROM inv_stock WHERE product_ref = ? AND on_hand - reserved >= ?
    ORDER BY on_hand - reserved DESC, warehouse_code LIMIT 1)`, n, n, now, ref, n, ref, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("reserve %d of %s in the warehouse with the most: %w", n, ref, err)
	}
	return r, ok, nil
}

// Release returns n reserved units to available, only if as many are
// reserved.
func (s *Store) Release(ctx context.Context, ref, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE inv_stock SET reserved = reserved - ?, qty_available = qty_available + ?, version = version + 1, updated_at = ?
WHERE product_ref = ? AND warehouse_code = ? AND reserved >= ?`, n, n, now, ref, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("release %d of %s in %s: %w", n, ref, warehouse, err)
	}
	return r, ok, nil
}

// Ship takes n reserved units off hand, only if as many are reserved;
// qty_available does not change.
func (s *Store) Ship(ctx context.Context, ref, warehouse string, n int, now time.Time) (Row, bool, error) {
	r, ok, err := s.guarded(ctx, `UPDATE inv_stock SET on_hand = on_hand - ?, reserved = reserved - ?, version = version + 1, updated_at = ?
WHERE product_ref = ? AND warehouse_code = ? AND reserved >= ?`, n, n, now, ref, warehouse, n)
	if err != nil {
		return Row{}, false, fmt.Errorf("ship %d of %s from %s: %w", n, ref, warehouse, err)
	}
	return r, ok, nil
}

// Candidates returns the warehouses with at least n units of the product
// available, the most available first.
func (s *Store) Candidates(ctx context.Context, ref string, n int) ([]string, error) {
	var codes []string
	err := db.Conn(ctx, s.db).Model(&Row{}).Where("product_ref = ? AND on_hand - reserved >= ?", ref, n).
		Order("on_hand - reserved DESC, warehouse_code").Pluck("warehouse_code", &codes).Error
	if err != nil {
		return nil, fmt.Errorf("warehouses with %d of %s: %w", n, ref, err)
	}
	return codes, nil
}

// journal holds the movements of a transaction until its commit, which
// writes them with the transaction's other queued rows (see db.Batch).
var journal = db.Batch[Movement]{
	Table:   "inv_movements",
	Columns: []string{"product_ref", "warehouse_code", "kind", "quantity", "reference", "created_at"},
	Values: func(m Movement) []any {
		return []any{m.ProductRef, m.WarehouseCode, m.Kind, m.Quantity, m.Reference, m.CreatedAt}
	},
}

// Journal records a movement in the transaction ctx carries, when it
// commits: the movements of one transaction, such as an order's
// reservations, are one INSERT.
func (s *Store) Journal(ctx context.Context, m Movement) error {
	if err := journal.Add(ctx, m); err != nil {
		return fmt.Errorf("journal %s of %s: %w", m.Kind, m.ProductRef, err)
	}
	return nil
}

// Movements returns a level's journal, oldest first.
func (s *Store) Movements(ctx context.Context, ref, warehouse string) ([]Movement, error) {
	var ms []Movement
	if err := db.Conn(ctx, s.db).Where("product_ref = ? AND warehouse_code = ?", ref, warehouse).Order("id").Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("movements of %s in %s: %w", ref, warehouse, err)
	}
	return ms, nil
}

// Count returns how many levels there are.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := db.Conn(ctx, s.db).Model(&Row{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count stock: %w", err)
	}
	return n, nil
}
