// Package store reads and writes the catalog's table, catalog_products. Every
// statement runs on db.Conn, so it joins the transaction the context
// carries.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// Row is one row of catalog_products.
type Row struct {
	ID          int64     `gorm:"column:id;primaryKey"`
	SKU         string    `gorm:"column:sku"`
	Name        string    `gorm:"column:name"`
	Description string    `gorm:"column:description"`
	PriceCents  int64     `gorm:"column:price_cents"`
	Currency    string    `gorm:"column:currency"`
	Active      bool      `gorm:"column:active"`
	Version     int       `gorm:"column:version"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	UpdatedAt   time.Time `gorm:"column:updated_at"`
}

// TableName is the table the catalog owns.
func (Row) TableName() string { return "catalog_products" }

const columns = "id, sku, name, description, price_cents, currency, active, version, created_at, updated_at"

// Filter selects products in List.
type Filter struct {
	NameContains string
	SKU          string
	Currency     string
	Active       *bool
}

// Store is the catalog's data access.
type Store struct{ db *gorm.DB }

// New returns a store on gdb.
func New(gdb *gorm.DB) *Store { return &Store{db: gdb} }

// Insert adds r and sets its ID.
func (s *Store) Insert(ctx context.Context, r *Row) error {
	return db.Conn(ctx, s.db).Create(r).Error
}

// Get returns the product with id; ok is false when there is none.
func (s *Store) Get(ctx context.Context, id int64) (r Row, ok bool, err error) {
	err = db.Conn(ctx, s.db).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Row{}, false, nil
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("get product %d: %w", id, err)
	}
	return r, true, nil
}

// BySKU returns the products with the given SKUs, in any order.
//
// It runs past gorm's builder and reflective scan (db.QueryNative), which
// took half of its CPU time on the path of every order. On Postgres the
// SKUs go as one array parameter, so that the statement's text is the same
// for any number of them.
func (s *Store) BySKU(ctx context.Context, skus []string) ([]Row, error) {
	var out []Row
	if len(skus) == 0 {
		return out, nil
	}
	query, args := bySKUPostgres, []any{skus}
	if db.DialectOf(s.db) == db.SQLite {
		query = "SELECT " + columns + " FROM catalog_products WHERE sku IN (?" + strings.Repeat(", ?", len(skus)-1) + ")"
		args = make([]any, len(skus))
		for i, sku := range skus {
			args[i] = sku
		}
	}
	rows, err := db.QueryNative(ctx, s.db, query, args...)
	if err != nil {
		return nil, fmt.Errorf("products by SKU: %w", err)
	}
	defer rows.Close()
	out = make([]Row, 0, len(skus))
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.ID, &r.SKU, &r.Name, &r.Description, &r.PriceCents, &r.Currency, &r.Active, &r.Version, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("products by SKU: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("products by SKU: %w", err)
	}
	return out, nil
}

// bySKUPostgres is BySKU's statement on Postgres.
const bySKUPostgres = "SELECT " + columns + " FROM catalog_products WHERE sku = ANY ($1::text[])"

// List returns up to limit products with an id above afterID, in id order.
func (s *Store) List(ctx context.Context, f Filter, afterID int64, limit int) ([]Row, error) {
	q := db.Conn(ctx, s.db).Where("id > ?", afterID)
	if f.NameContains != "" {
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\'`, "%"+escapeLike(strings.ToLower(f.NameContains))+"%")
	}
	if f.SKU != "" {
		q = q.Where("sku = ?", f.SKU)
	}
	if f.Currency != "" {
		q = q.Where("currency = ?", f.Currency)
	}
	if f.Active != nil {
		q = q.Where("active = ?", *f.Active)
	}
	var rows []Row
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return rows, nil
}

// Changes are the columns Update may set; nil leaves a column alone.
type Changes struct {
	Name        *string
	Description *string
	PriceCents  *int64
	Currency    *string
	Active      *bool
}

// Update applies ch to product id, bumps its version and returns the new
// row; ok is false when there is no such product. The UPDATE locks the row
// until the transaction ends, so that whatever the caller writes next in
// the same transaction describes this version.
func (s *Store) Update(ctx context.Context, id int64, ch Changes, now time.Time) (r Row, ok bool, err error) {
	sets := []string{"version = version + 1", "updated_at = ?"}
	args := []any{now}
	add := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
	}
	if ch.Name != nil {
		add("name", *ch.Name)
	}
	if ch.Description != nil {
		add("description", *ch.Description)
	}
	if ch.PriceCents != nil {
		add("price_cents", *ch.PriceCents)
	}
	if ch.Currency != nil {
		add("currency", *ch.Currency)
	}
	if ch.Active != nil {
		add("active", *ch.Active)
	}
	args = append(args, id)
	var rows []Row
	sql := "UPDATE catalog_products SET " + strings.Join(sets, ", ") + " WHERE id = ? RETURNING " + columns
	if err := db.Conn(ctx, s.db).Raw(sql, args...).Scan(&rows).Error; err != nil {
		return Row{}, false, fmt.Errorf("update product %d: %w", id, err)
	}
	if len(rows) == 0 {
		return Row{}, false, nil
	}
	return rows[0], true, nil
}

// Count returns how many products there are.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := db.Conn(ctx, s.db).Model(&Row{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count products: %w", err)
	}
	return n, nil
}

// escapeLike escapes LIKE's wildcards with backslashes.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
