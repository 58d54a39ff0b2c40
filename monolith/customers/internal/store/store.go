// Package store reads and writes the customers table. Every statement runs
// on db.Conn, so it joins the transaction the context carries.
package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// Row is one row of customers.
type Row struct {
	ID           int64     `gorm:"column:id;primaryKey"`
	Email        string    `gorm:"column:email"`
	Name         string    `gorm:"column:name"`
	AddressLine1 string    `gorm:"column:address_line1"`
	AddressLine2 string    `gorm:"column:address_line2"`
	PostalCode   string    `gorm:"column:postal_code"`
	City         string    `gorm:"column:city"`
	Country      string    `gorm:"column:country"`
	Version      int       `gorm:"column:version"`
	CreatedAt    time.Time `gorm:"column:created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at"`
}

// TableName is the table the module owns.
func (Row) TableName() string { return "customers" }

const columns = "id, email, name, address_line1, address_line2, postal_code, city, country, version, created_at, updated_at"

// Store is the module's data access.
type Store struct{ db *gorm.DB }

// New returns a store on gdb.
func New(gdb *gorm.DB) *Store { return &Store{db: gdb} }

// Insert adds r and sets its ID.
func (s *Store) Insert(ctx context.Context, r *Row) error {
	return db.Conn(ctx, s.db).Create(r).Error
}

// Get returns customer id; ok is false when there is none.
//
// It runs past gorm's builder and reflective scan (db.QueryNative): it is
// on the path of every order.
func (s *Store) Get(ctx context.Context, id int64) (r Row, ok bool, err error) {
	query := getPostgres
	if db.DialectOf(s.db) == db.SQLite {
		query = getSQLite
	}
	rows, err := db.QueryNative(ctx, s.db, query, id)
	if err != nil {
		return Row{}, false, fmt.Errorf("get customer %d: %w", id, err)
	}
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&r.ID, &r.Email, &r.Name, &r.AddressLine1, &r.AddressLine2, &r.PostalCode, &r.City, &r.Country, &r.Version, &r.CreatedAt, &r.UpdatedAt)
		ok = err == nil
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return Row{}, false, fmt.Errorf("get customer %d: %w", id, err)
	}
	return r, ok, nil
}

// Get's statement, in each dialect's placeholders.
const (
	getPostgres = "SELECT " + columns + " FROM customers WHERE id = $1"
	getSQLite   = "SELECT " + columns + " FROM customers WHERE id = ?"
)

// List returns up to limit customers with an id above afterID, in id order.
func (s *Store) List(ctx context.Context, email, nameContains string, afterID int64, limit int) ([]Row, error) {
	q := db.Conn(ctx, s.db).Where("id > ?", afterID)
	if email != "" {
		q = q.Where("email = ?", email)
	}
	if nameContains != "" {
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\'`, "%"+escapeLike(strings.ToLower(nameContains))+"%")
	}
	var rows []Row
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	return rows, nil
}

// Update applies the non-nil values in set (column → value) to customer id,
// bumps its version and returns the new row; ok is false when there is no
// such customer. The UPDATE locks the row until the transaction ends.
func (s *Store) Update(ctx context.Context, id int64, set map[string]string, now time.Time) (r Row, ok bool, err error) {
	sets := []string{"version = version + 1", "updated_at = ?"}
	args := []any{now}
	for _, col := range []string{"email", "name", "address_line1", "address_line2", "postal_code", "city", "country"} {
		if v, has := set[col]; has {
			sets = append(sets, col+" = ?")
			args = append(args, v)
		}
	}
	args = append(args, id)
	var rows []Row
	sql := "UPDATE customers SET " + strings.Join(sets, ", ") + " WHERE id = ? RETURNING " + columns
	if err := db.Conn(ctx, s.db).Raw(sql, args...).Scan(&rows).Error; err != nil {
		return Row{}, false, fmt.Errorf("update customer %d: %w", id, err)
	}
	if len(rows) == 0 {
		return Row{}, false, nil
	}
	return rows[0], true, nil
}

// Delete removes customer id and returns the row it removed; ok is false
// when there was none.
func (s *Store) Delete(ctx context.Context, id int64) (r Row, ok bool, err error) {
	var rows []Row
	if err := db.Conn(ctx, s.db).Raw("DELETE FROM customers WHERE id = ? RETURNING "+columns, id).Scan(&rows).Error; err != nil {
		return Row{}, false, fmt.Errorf("delete customer %d: %w", id, err)
	}
	if len(rows) == 0 {
		return Row{}, false, nil
	}
	return rows[0], true, nil
}

// Count returns how many customers there are.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := db.Conn(ctx, s.db).Model(&Row{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count customers: %w", err)
	}
	return n, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
