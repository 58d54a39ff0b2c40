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
// orders from 10¹² up, a range the monolith would reach only after a
// trillion orders, and CheckID refuses a legacy id in it, so a collision
// fails loudly instead of merging two orders. Both ranges stay below 2⁵³,
// so that JavaScript clients read every id exactly.
const ServiceIDBase int64 = 1_000_000_000_000

// MaxID is the highest id either side may use: 2⁵³ − 1.
const MaxID int64 = 1<<53 - 1

// ErrIDCollision is wrapped by the error of a legacy order id in the
// service's range, or not positive.
var ErrIDCollision = errors.New("legacy order id outside the legacy range")

// IsServiceID reports whether id was given by the service (IDs.Next).
func IsServiceID(id int64) bool { return id >= ServiceIDBase && id <= MaxID }

// CheckID reports whether a legacy order id can be the service's aggregate
// id: positive and below ServiceIDBase.
func CheckID(legacyID int64) error {
	if legacyID <= 0 || legacyID >= ServiceIDBase {
		return fmt.Errorf("%w: order id %d is not within 1..%d", ErrIDCollision, legacyID, ServiceIDBase-1)
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
