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
// is false when its WHERE clause matched nothing. It scans the row itself:
// every order's reservations come here, and gorm's reflective Scan was a
// fifth of an order's allocations.
func (s *Store) guarded(ctx context.Context, sql string, args ...any) (r Row, ok bool, err error) {
	rows, err := db.Conn(ctx, s.db).Raw(sql+" RETURNING "+columns, args...).Rows()
	if err != nil {
		return Row{}, false, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&r.ProductRef, &r.WarehouseCode, &r.OnHand, &r.Reserved, &r.QtyAvailable, &r.Version, &r.UpdatedAt); err != nil {
			return Row{}, false, err
		}
		ok = true
	}
	if err := rows.Err(); err != nil {
		return Row{}, false, err
	}
	return r, ok, nil
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

// Want is one product of ReserveEach: N units of ProductRef.
type Want struct {
	ProductRef string
	N          int
}

// ReservesInOne reports whether ReserveEach may be called: on Postgres,
// where it saves a round trip per product. On SQLite, in process, there is
// no round trip to save, and one statement that picks the warehouses of
// several products took more CPU than a ReserveMost apiece (about 0.1 ms an
// order more in BenchmarkPlace).
func (s *Store) ReservesInOne() bool { return db.DialectOf(s.db) == db.Postgres }

// ReserveEach reserves each of ws, whose products are distinct, in the
// warehouse with the most of its units available (ties by code), all in
// one Postgres statement, and returns the levels it changed in no set
// order. A product that no warehouse has enough of is missing from them.
// The statement first locks every level of the products in product and
// warehouse order, the order every writer of several levels keeps, so that
// two orders cannot deadlock, and picks the warehouses from the locked
// rows. A product whose level changed between the statement's snapshot
// and the lock may still be missing; the caller then reserves it alone.
// The products and quantities go as two arrays, so that the statement's
// text is the same for any number of them: one prepared statement, and a
// plan with no list to join, which Postgres also re-runs, for each level
// another order changed while this one waited for its lock, in a copy of
// its own (EvalPlanQual).
func (s *Store) ReserveEach(ctx context.Context, ws []Want, now time.Time) ([]Row, error) {
	refs := make([]string, len(ws))
	ns := make([]int32, len(ws))
	for i, w := range ws {
		refs[i], ns[i] = w.ProductRef, int32(w.N)
	}
	rows, err := db.QueryNative(ctx, s.db, reserveEach, refs, ns, now)
	if err != nil {
		return nil, fmt.Errorf("reserve %d products in the warehouses with the most: %w", len(ws), err)
	}
	defer rows.Close()
	out := make([]Row, 0, len(ws))
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.ProductRef, &r.WarehouseCode, &r.OnHand, &r.Reserved, &r.QtyAvailable, &r.Version, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("reserve %d products in the warehouses with the most: %w", len(ws), err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reserve %d products in the warehouses with the most: %w", len(ws), err)
	}
	return out, nil
}

// reserveEach is ReserveEach's statement: the wanted products ($1) and
// quantities ($2), the products' levels, locked, the pick of a warehouse
// per product, and the guarded update of the picked levels, stamped $3.
const reserveEach = `WITH want (ref, n) AS (SELECT * FROM unnest($1::text[], $2::integer[])),
levels AS MATERIALIZED (SELECT s.product_ref AS ref, s.warehouse_code AS wh, s.on_hand - s.reserved AS avail
    FROM inv_stock s WHERE s.product_ref = ANY ($1::text[])
    ORDER BY s.product_ref, s.warehouse_code FOR UPDATE OF s),
pick AS (SELECT DISTINCT ON (l.ref) l.ref, l.wh, w.n
    FROM levels l JOIN want w ON w.ref = l.ref WHERE l.avail >= w.n
    ORDER BY l.ref, l.avail DESC, l.wh)
UPDATE inv_stock SET reserved = inv_stock.reserved + pick.n, qty_available = inv_stock.qty_available - pick.n,
    version = inv_stock.version + 1, updated_at = $3
FROM pick WHERE inv_stock.product_ref = pick.ref AND inv_stock.warehouse_code = pick.wh
    AND inv_stock.on_hand - inv_stock.reserved >= pick.n
RETURNING inv_stock.product_ref, inv_stock.warehouse_code, inv_stock.on_hand, inv_stock.reserved,
    inv_stock.qty_available, inv_stock.version, inv_stock.updated_at`

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
