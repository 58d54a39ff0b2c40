// Package service implements the inventory service's operations: its own
// writes (adjust, reserve, release, ship), which it accepts only while it
// owns the inventory, and the changes that happened elsewhere and that the
// anti-corruption layer applies to it (Apply, ApplyState, LearnProduct).
// Every change writes its event into the service's outbox in the same
// transaction.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/store"
)

// Service is the inventory service's core.
type Service struct {
	db    *gorm.DB
	store *store.Store
	now   func() time.Time
	owner *servicekit.Ownership
}

// New returns the service on gdb; now stamps changes (time.Now if nil).
func New(gdb *gorm.DB, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: gdb, store: store.New(gdb), now: now, owner: servicekit.NewOwnership(gdb)}
}

// DB is the service's database.
func (s *Service) DB() *gorm.DB { return s.db }

// Store is the service's data access, for the anti-corruption layer's
// reads.
func (s *Service) Store() *store.Store { return s.store }

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Ownership is the switch that decides whether the service takes writes,
// for the HTTP APIs' Gate.
func (s *Service) Ownership() *servicekit.Ownership { return s.owner }

// LoadOwner reads the persisted ownership.
func (s *Service) LoadOwner(ctx context.Context) error { return s.owner.Load(ctx) }

// Owner reports whether the service owns the inventory and takes writes.
func (s *Service) Owner() bool { return s.owner.Owner() }

// SetOwner makes the service the owner of the inventory (it takes writes)
// or a read replica (it refuses them with ErrNotOwner), and persists the
// choice.
func (s *Service) SetOwner(ctx context.Context, owner bool) error {
	return s.owner.SetOwner(ctx, owner)
}

// Warehouses returns the service's warehouses.
func (s *Service) Warehouses(ctx context.Context) ([]domain.Warehouse, error) {
	return s.store.Warehouses(ctx)
}

// Stock returns a SKU's items, ErrNotFound when there is none.
func (s *Service) Stock(ctx context.Context, sku string) ([]domain.Item, error) {
	rows, err := s.store.Items(ctx, domain.NormalizeSKU(sku))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, domain.Errorf(domain.ErrNotFound, "no stock is recorded for %s", sku)
	}
	out := make([]domain.Item, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Item())
	}
	return out, nil
}

func (s *Service) checkOwner() error {
	if !s.owner.Owner() {
		return domain.Errorf(domain.ErrNotOwner, "the inventory service is a read replica: writes go to the monolith until the ownership flip")
	}
	return nil
}

// Adjust adds or removes units on hand, creating the item on the first
// delivery of a known SKU to a warehouse.
func (s *Service) Adjust(ctx context.Context, sku string, a domain.Adjustment) (domain.Item, error) {
	sku = domain.NormalizeSKU(sku)
	if err := a.Validate(); err != nil {
		return domain.Item{}, err
	}
	if err := s.checkOwner(); err != nil {
		return domain.Item{}, err
	}
	var out domain.Item
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		cur, exists, err := s.store.Item(ctx, sku, a.Warehouse)
		if err != nil {
			return err
		}
		if !exists {
			if err := s.checkNew(ctx, sku, a.Warehouse); err != nil {
				return err
			}
		}
		now := s.stamp()
		var r store.Row
		var ok bool
		if a.Delta > 0 {
			r, ok, err = s.store.AddOnHand(ctx, sku, a.Warehouse, a.Delta, a.ExpectedVersion, now)
		} else {
			r, ok, err = s.store.RemoveOnHand(ctx, sku, a.Warehouse, -a.Delta, a.ExpectedVersion, now)
		}
		if err != nil {
			return err
		}
		if !ok {
			if a.ExpectedVersion != nil && *a.ExpectedVersion != cur.Version {
				return domain.Errorf(domain.ErrVersionConflict, "%s in %s is at version %d, not %d", sku, a.Warehouse, cur.Version, *a.ExpectedVersion)
			}
			return domain.Errorf(domain.ErrBelowReserved, "cannot remove %d of %s from %s: %d on hand, %d of them reserved",
				-a.Delta, sku, a.Warehouse, cur.OnHand, cur.Reserved)
		}
		out = r.Item()
		return s.record(ctx, out, domain.Movement{Kind: domain.KindAdjust, Quantity: a.Delta, Reference: a.Reason}, domain.Origin, now)
	})
	return out, err
}

// checkNew confirms that an item may be created: the warehouse exists and
// the service knows the SKU.
func (s *Service) checkNew(ctx context.Context, sku, warehouse string) error {
	ok, err := s.store.WarehouseExists(ctx, warehouse)
	if err != nil {
		return err
	}
	if !ok {
		return domain.Errorf(domain.ErrUnknownWarehouse, "no warehouse has the id %s", warehouse)
	}
	ok, err = s.store.ProductKnown(ctx, sku)
	if err != nil {
		return err
	}
	if !ok {
		return domain.Errorf(domain.ErrUnknownProduct, "no product has the SKU %s", sku)
	}
	return nil
}

// Reserve holds units in the named warehouse, or else in the one with the
// most available. A reservation with a reference is idempotent: when the
// same reference already reserved the same quantity of the SKU (in the
// same warehouse, if one is named), the item is returned unchanged, so a
// client that retries after a timeout does not reserve twice.
func (s *Service) Reserve(ctx context.Context, sku string, m domain.Move) (domain.Item, error) {
	sku = domain.NormalizeSKU(sku)
	if err := m.Validate(false); err != nil {
		return domain.Item{}, err
	}
	if err := s.checkOwner(); err != nil {
		return domain.Item{}, err
	}
	var out domain.Item
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		if m.Reference != "" {
			wh, done, err := s.store.Reservation(ctx, m.Reference, sku, m.Warehouse, m.Quantity)
			if err != nil {
				return err
			}
			if done {
				r, _, err := s.store.Item(ctx, sku, wh)
				out = r.Item()
				return err
			}
		}
		candidates := []string{m.Warehouse}
		if m.Warehouse == "" {
			var err error
			if candidates, err = s.store.Candidates(ctx, sku, m.Quantity); err != nil {
				return err
			}
		}
		now := s.stamp()
		for _, wh := range candidates {
			// Another transaction may have taken the units since
			// Candidates read them; the guard then fails and the next
			// warehouse is tried.
			r, ok, err := s.store.Reserve(ctx, sku, wh, m.Quantity, now)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if m.Reference != "" {
				if err := s.store.RecordReservation(ctx, m.Reference, sku, wh, m.Quantity, now); err != nil {
					return err
				}
			}
			out = r.Item()
			return s.record(ctx, out, domain.Movement{Kind: domain.KindReserve, Quantity: m.Quantity, Reference: m.Reference}, domain.Origin, now)
		}
		where := "any one warehouse"
		if m.Warehouse != "" {
			where = m.Warehouse
		}
		return domain.Errorf(domain.ErrOutOfStock, "not enough stock to reserve %d of %s in %s", m.Quantity, sku, where)
	})
	return out, err
}

// Release returns reserved units to available.
func (s *Service) Release(ctx context.Context, sku string, m domain.Move) (domain.Item, error) {
	return s.settle(ctx, sku, m, domain.KindRelease, s.store.Release)
}

// Ship takes reserved units off hand.
func (s *Service) Ship(ctx context.Context, sku string, m domain.Move) (domain.Item, error) {
	return s.settle(ctx, sku, m, domain.KindShip, s.store.Ship)
}

func (s *Service) settle(ctx context.Context, sku string, m domain.Move, kind string,
	apply func(ctx context.Context, sku, wh string, n int, now time.Time) (store.Row, bool, error)) (domain.Item, error) {
	sku = domain.NormalizeSKU(sku)
	if err := m.Validate(true); err != nil {
		return domain.Item{}, err
	}
	if err := s.checkOwner(); err != nil {
		return domain.Item{}, err
	}
	var out domain.Item
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		r, ok, err := apply(ctx, sku, m.Warehouse, m.Quantity, now)
		if err != nil {
			return err
		}
		if !ok {
			cur, exists, err := s.store.Item(ctx, sku, m.Warehouse)
			if err != nil {
				return err
			}
			if !exists {
				return domain.Errorf(domain.ErrNotFound, "no stock of %s is recorded in %s", sku, m.Warehouse)
			}
			return domain.Errorf(domain.ErrNotReserved, "cannot %s %d of %s in %s: %d are reserved", kind, m.Quantity, sku, m.Warehouse, cur.Reserved)
		}
		if m.Reference != "" {
			if err := s.store.SettleReservation(ctx, m.Reference, sku, m.Warehouse, m.Quantity); err != nil {
				return err
			}
		}
		out = r.Item()
		return s.record(ctx, out, domain.Movement{Kind: kind, Quantity: m.Quantity, Reference: m.Reference}, domain.Origin, now)
	})
	return out, err
}

// record journals a movement and writes its event, tagged with origin.
func (s *Service) record(ctx context.Context, it domain.Item, m domain.Movement, origin string, now time.Time) error {
	if err := s.store.Journal(ctx, &store.MovementRow{SKU: it.SKU, Warehouse: it.Warehouse, Kind: m.Kind, Quantity: m.Quantity, Reference: m.Reference, Origin: origin, CreatedAt: now}); err != nil {
		return err
	}
	return s.emit(ctx, domain.EventType(m.Kind), domain.ItemEvent{Item: it, Movement: &m}, origin)
}

func (s *Service) emit(ctx context.Context, eventType string, payload domain.ItemEvent, origin string) error {
	ev, err := changefeed.NewEvent(domain.AggregateType, domain.ItemKey(payload.SKU, payload.Warehouse), eventType, payload)
	if err != nil {
		return err
	}
	if err := (outbox.Writer{Source: domain.Source, Origin: origin}).AddContext(ctx, s.db, ev); err != nil {
		return fmt.Errorf("emit %s: %w", eventType, err)
	}
	return nil
}

// ErrConflict is wrapped by Apply's error when a movement from elsewhere
// cannot be merged: the result would break 0 <= reserved <= on_hand.
var ErrConflict = errors.New("movement conflicts with the service's state")

// Apply applies a movement that happened in another system (origin) to an
// item, in the transaction ctx carries, and publishes it with that origin.
//
// It applies the movement as a delta when the item exists, so that it
// commutes with the service's own writes (see acl/inventory for the flip
// window); when the item does not exist yet, it takes state, the item as
// the other system has it after the movement.
func (s *Service) Apply(ctx context.Context, m domain.Movement, state domain.Item, origin string) (domain.Item, error) {
	var out domain.Item
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		dOnHand, dReserved, err := m.Delta()
		if err != nil {
			return err
		}
		_, exists, err := s.store.Item(ctx, state.SKU, state.Warehouse)
		if err != nil {
			return err
		}
		var r store.Row
		if exists {
			var ok bool
			if r, ok, err = s.store.ApplyDelta(ctx, state.SKU, state.Warehouse, dOnHand, dReserved, now); err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: %s %d of %s in %s", ErrConflict, m.Kind, m.Quantity, state.SKU, state.Warehouse)
			}
		} else {
			if state.UpdatedAt.IsZero() {
				state.UpdatedAt = now
			}
			if r, err = s.store.SetState(ctx, state); err != nil {
				return err
			}
		}
		out = r.Item()
		return s.record(ctx, out, m, origin, now)
	})
	return out, err
}

// ApplyState takes over an item's whole state from another system, as a
// snapshot gives it, and publishes item.synced with that origin.
func (s *Service) ApplyState(ctx context.Context, state domain.Item, origin string) (domain.Item, error) {
	var out domain.Item
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		if state.UpdatedAt.IsZero() {
			state.UpdatedAt = s.stamp()
		}
		r, err := s.store.SetState(ctx, state)
		if err != nil {
			return err
		}
		out = r.Item()
		return s.emit(ctx, domain.EventSynced, domain.ItemEvent{Item: out}, origin)
	})
	return out, err
}

// LearnProduct records a SKU the service may hold stock of.
func (s *Service) LearnProduct(ctx context.Context, sku string, active bool) error {
	return s.store.UpsertProduct(ctx, domain.NormalizeSKU(sku), active, s.stamp())
}
