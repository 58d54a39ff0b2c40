package orders

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
)

// ServiceIDBase is the first id of an order placed on the orders service.
// Legacy order ids (the monolith's identity column, from 1) stay the ids
// clients see and the service's aggregate ids; the service numbers its own
// orders from 10¹² up, a range the monolith's Postgres identity column
// would reach only after a trillion orders. Both stay below 2⁵³, so that
// JavaScript clients read every id exactly.
//
// One id space, two writers: the phases let one side place orders at a
// time (the monolith before the ownership flip, the service after it, the
// monolith again after a rollback). After a rollback on SQLite the
// monolith's AUTOINCREMENT continues after the largest id in its table,
// which a back sync has filled with service ids, so the monolith then
// takes ids in the service's range: the back sync raises its floor
// RollbackIDGap past each service order it writes, above the ids the
// service's sagas in flight hold (keepLegacyIDsApart); the service learns
// every order id through the forward sync, and IDs.Observe moves its
// counter RollbackIDGap past them, so that the next flip hands out no id
// the monolith has used, nor one it takes while the sync catches up.
const ServiceIDBase int64 = 1_000_000_000_000

// MaxID is the highest id either side may use: 2⁵³ − 1.
const MaxID int64 = 1<<53 - 1

// ErrBadID is wrapped by the error of an order id outside 1..MaxID.
var ErrBadID = errors.New("order id out of range")

// IsServiceID reports whether id is in the service's range (IDs.Next).
func IsServiceID(id int64) bool { return id >= ServiceIDBase && id <= MaxID }

// CheckID reports whether a legacy order id can be the service's aggregate
// id as it is: positive and at most MaxID.
func CheckID(legacyID int64) error {
	if legacyID <= 0 || legacyID > MaxID {
		return fmt.Errorf("%w: order id %d is not within 1..%d", ErrBadID, legacyID, MaxID)
	}
	return nil
}

// IDs gives the ids of orders placed on the service, from the one-row
// counter acl_order_ids in the service's database (migrated with
// Migrations).
type IDs struct{ db *gorm.DB }

// NewIDs returns the id source on the service's database.
func NewIDs(gdb *gorm.DB) *IDs { return &IDs{db: gdb} }

// Next returns a new order id, ServiceIDBase + n. It joins the transaction
// ctx carries (db.Conn): the UPDATE locks the counter row until it ends, so
// concurrent callers never get the same id, and an order that rolls back
// gives its id back.
func (i *IDs) Next(ctx context.Context) (int64, error) {
	var next []int64
	err := db.Conn(ctx, i.db).Raw("UPDATE acl_order_ids SET last = last + 1 WHERE name = 'orders' RETURNING last").Scan(&next).Error
	if err != nil {
		return 0, fmt.Errorf("next order id: %w", err)
	}
	if len(next) != 1 {
		return 0, errors.New("next order id: acl_order_ids has no counter; migrate the orders ACL's set")
	}
	id := ServiceIDBase + next[0]
	if id > MaxID {
		return 0, fmt.Errorf("next order id: %d is past the highest id %d", id, MaxID)
	}
	return id, nil
}

// Observe moves the counter RollbackIDGap past id, an order id the service
// learned from the monolith, when id is in the service's range (the
// monolith took it after a rollback on SQLite), so that Next never returns
// it, nor the ids the monolith takes after it while the forward sync
// brings them: at the next flip the monolith's last orders may still be on
// their way. It joins the transaction ctx carries, the forward sync's.
func (i *IDs) Observe(ctx context.Context, id int64) error {
	if !IsServiceID(id) {
		return nil
	}
	last := min(id+RollbackIDGap, MaxID) - ServiceIDBase
	err := db.Conn(ctx, i.db).Exec("UPDATE acl_order_ids SET last = ? WHERE name = 'orders' AND last < ?", last, last).Error
	if err != nil {
		return fmt.Errorf("observe order id %d: %w", id, err)
	}
	return nil
}
