// Package service implements the inventory module's API.
package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/internal/errs"
	"github.com/stranglerkit/strangler/monolith/internal/events"
	"github.com/stranglerkit/strangler/monolith/internal/page"
	"github.com/stranglerkit/strangler/monolith/inventory/internal/domain"
	"github.com/stranglerkit/strangler/monolith/inventory/internal/store"
)

const listName = "inventory.stock"

// Service is the module's implementation.
type Service struct {
	db      *gorm.DB
	store   *store.Store
	catalog catalog.API
	events  *events.Emitter
	now     func() time.Time
}

// New returns the service on gdb. The catalog confirms that a product
// exists before its first stock level is created.
func New(gdb *gorm.DB, cat catalog.API, now func() time.Time) *Service {
	return &Service{db: gdb, store: store.New(gdb), catalog: cat, events: events.New("inventory"), now: now}
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// List returns a page of stock levels.
func (s *Service) List(ctx context.Context, q domain.Query) (domain.Page, error) {
	if err := q.Validate(); err != nil {
		return domain.Page{}, err
	}
	limit, err := page.Limit(q.Limit)
	if err != nil {
		return domain.Page{}, err
	}
	var after store.Position
	if q.Cursor != "" {
		if err := page.Decode(listName, q.Cursor, &after); err != nil {
			return domain.Page{}, err
		}
	}
	rows, err := s.store.List(ctx, q.Warehouse, q.InStock, after, limit+1)
	if err != nil {
		return domain.Page{}, err
	}
	out := domain.Page{Items: make([]domain.Level, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			last := rows[i-1]
			out.NextCursor = page.Encode(listName, store.Position{ProductRef: last.ProductRef, Warehouse: last.WarehouseCode})
			break
		}
		out.Items = append(out.Items, toLevel(r))
	}
	return out, nil
}

// Stock returns a product's levels in every warehouse, with totals.
func (s *Service) Stock(ctx context.Context, ref string) (domain.ProductStock, error) {
	if err := domain.CheckRef(ref); err != nil {
		return domain.ProductStock{}, err
	}
	rows, err := s.store.Levels(ctx, ref)
	if err != nil {
		return domain.ProductStock{}, err
	}
	if len(rows) == 0 {
		return domain.ProductStock{}, errs.New(domain.ErrNotFound, "no stock is recorded for %s", ref)
	}
	out := domain.ProductStock{ProductRef: ref, Warehouses: make([]domain.Level, 0, len(rows))}
	for _, r := range rows {
		out.OnHand += r.OnHand
		out.Reserved += r.Reserved
		out.Available += r.QtyAvailable
		out.Warehouses = append(out.Warehouses, toLevel(r))
	}
	return out, nil
}

// Warehouses returns the shop's warehouses, by code.
func (s *Service) Warehouses(ctx context.Context) ([]domain.Warehouse, error) {
	rows, err := s.store.Warehouses(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]domain.Warehouse, 0, len(rows))
	for _, r := range rows {
		out = append(out, domain.Warehouse{Code: r.Code, Name: r.Name, Country: r.Country})
	}
	return out, nil
}

// Adjust adds or removes units on hand.
func (s *Service) Adjust(ctx context.Context, ref string, a domain.Adjustment) (domain.Level, error) {
	if err := domain.CheckRef(ref); err != nil {
		return domain.Level{}, err
	}
	if err := a.Validate(); err != nil {
		return domain.Level{}, err
	}
	var out domain.Level
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		cur, exists, err := s.store.Level(ctx, ref, a.Warehouse)
		if err != nil {
			return err
		}
		if !exists {
			if err := s.checkNewLevel(ctx, ref, a.Warehouse); err != nil {
				return err
			}
		}
		var r store.Row
		now := s.stamp()
		if a.Delta > 0 {
			r, err = s.store.AddOnHand(ctx, ref, a.Warehouse, a.Delta, now)
			if err != nil {
				return err
			}
		} else {
			var ok bool
			r, ok, err = s.store.RemoveOnHand(ctx, ref, a.Warehouse, -a.Delta, now)
			if err != nil {
				return err
			}
			if !ok {
				return errs.New(domain.ErrBelowReserved, "cannot remove %d of %s from %s: %d on hand, %d of them reserved",
					-a.Delta, ref, a.Warehouse, cur.OnHand, cur.Reserved)
			}
		}
		if err := s.store.Journal(ctx, store.Movement{ProductRef: ref, WarehouseCode: a.Warehouse, Kind: "adjust", Quantity: a.Delta, Reference: a.Reason, CreatedAt: now}); err != nil {
			return err
		}
		out = toLevel(r)
		return s.emit(ctx, "stock.adjusted", out, "adjust", a.Delta, a.Reason)
	})
	return out, err
}

// checkNewLevel confirms that a level may be created: the warehouse exists
// and the catalog knows the product.
func (s *Service) checkNewLevel(ctx context.Context, ref, warehouse string) error {
	ok, err := s.store.WarehouseExists(ctx, warehouse)
	if err != nil {
		return err
	}
	if !ok {
		return errs.New(domain.ErrUnknownWarehouse, "no warehouse has the code %s", warehouse)
	}
	id, err := catalog.ParseProductRef(ref)
	if err != nil {
		return err
	}
	if _, err := s.catalog.Get(ctx, id); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return errs.New(domain.ErrUnknownProduct, "the catalog has no product %s", ref)
		}
		return fmt.Errorf("look up %s in the catalog: %w", ref, err)
	}
	return nil
}

// Reserve holds units for an order: in the named warehouse, or else in the
// one with the most units available.
func (s *Service) Reserve(ctx context.Context, ref string, m domain.Move) (domain.Level, error) {
	if err := domain.CheckRef(ref); err != nil {
		return domain.Level{}, err
	}
	if err := m.Validate(false); err != nil {
		return domain.Level{}, err
	}
	var out domain.Level
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		var err error
		out, err = s.reserve(ctx, ref, m, s.stamp())
		return err
	})
	return out, err
}

// ReserveAll holds units for each of rs, such as an order's lines. When
// there are several, with distinct products and no warehouse named, one
// statement reserves them all where the store does that (see
// store.ReserveEach); the rest, and any that statement left out, are
// reserved one by one. Every reservation is
// journalled and emitted in the order of rs, as Reserve would.
func (s *Service) ReserveAll(ctx context.Context, rs []domain.Reservation) ([]domain.Level, error) {
	for _, r := range rs {
		if err := domain.CheckRef(r.ProductRef); err != nil {
			return nil, err
		}
		if err := r.Validate(false); err != nil {
			return nil, err
		}
	}
	out := make([]domain.Level, 0, len(rs))
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		var batched []store.Row
		if ws, ok := batchable(rs); ok && s.store.ReservesInOne() {
			var err error
			if batched, err = s.store.ReserveEach(ctx, ws, now); err != nil {
				return err
			}
		}
		for _, r := range rs {
			i := slices.IndexFunc(batched, func(b store.Row) bool { return b.ProductRef == r.ProductRef })
			if i < 0 {
				l, err := s.reserve(ctx, r.ProductRef, r.Move, now)
				if err != nil {
					return err
				}
				out = append(out, l)
				continue
			}
			l := toLevel(batched[i])
			if err := s.reserved(ctx, l, r.Move, now); err != nil {
				return err
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// batchable returns the wants of one ReserveEach for rs, if it is worth
// one and can take them: several reservations of distinct products, none
// naming its warehouse.
func batchable(rs []domain.Reservation) ([]store.Want, bool) {
	if len(rs) < 2 {
		return nil, false
	}
	ws := make([]store.Want, 0, len(rs))
	for _, r := range rs {
		if r.Warehouse != "" || slices.ContainsFunc(ws, func(w store.Want) bool { return w.ProductRef == r.ProductRef }) {
			return nil, false
		}
		ws = append(ws, store.Want{ProductRef: r.ProductRef, N: r.Quantity})
	}
	return ws, true
}

// reserve makes one reservation in the transaction ctx carries.
func (s *Service) reserve(ctx context.Context, ref string, m domain.Move, now time.Time) (domain.Level, error) {
	candidates := []string{m.Warehouse}
	if m.Warehouse == "" {
		// Most orders take the warehouse with the most available in
		// one statement; the list of candidates is for the rest.
		r, ok, err := s.store.ReserveMost(ctx, ref, m.Quantity, now)
		if err != nil {
			return domain.Level{}, err
		}
		if ok {
			l := toLevel(r)
			return l, s.reserved(ctx, l, m, now)
		}
		if candidates, err = s.store.Candidates(ctx, ref, m.Quantity); err != nil {
			return domain.Level{}, err
		}
	}
	for _, wh := range candidates {
		// Another transaction may have taken the units since
		// Candidates read them; the guard then fails and the next
		// warehouse is tried.
		r, ok, err := s.store.Reserve(ctx, ref, wh, m.Quantity, now)
		if err != nil {
			return domain.Level{}, err
		}
		if !ok {
			continue
		}
		l := toLevel(r)
		return l, s.reserved(ctx, l, m, now)
	}
	where := "any one warehouse"
	if m.Warehouse != "" {
		where = m.Warehouse
	}
	return domain.Level{}, errs.New(domain.ErrOutOfStock, "not enough stock to reserve %d of %s in %s", m.Quantity, ref, where)
}

// reserved journals and emits the reservation m that left level l.
func (s *Service) reserved(ctx context.Context, l domain.Level, m domain.Move, now time.Time) error {
	if err := s.store.Journal(ctx, store.Movement{ProductRef: l.ProductRef, WarehouseCode: l.Warehouse, Kind: "reserve", Quantity: m.Quantity, Reference: m.Reference, CreatedAt: now}); err != nil {
		return err
	}
	return s.emit(ctx, "stock.reserved", l, "reserve", m.Quantity, m.Reference)
}

// Release returns reserved units to available, as when an order is
// cancelled.
func (s *Service) Release(ctx context.Context, ref string, m domain.Move) (domain.Level, error) {
	return s.settle(ctx, ref, m, "release", s.store.Release)
}

// Ship takes reserved units off hand, as when an order ships.
func (s *Service) Ship(ctx context.Context, ref string, m domain.Move) (domain.Level, error) {
	return s.settle(ctx, ref, m, "ship", s.store.Ship)
}

// settle applies a release or a shipment, which both consume a reservation.
func (s *Service) settle(ctx context.Context, ref string, m domain.Move, kind string,
	apply func(ctx context.Context, ref, wh string, n int, now time.Time) (store.Row, bool, error)) (domain.Level, error) {
	if err := domain.CheckRef(ref); err != nil {
		return domain.Level{}, err
	}
	if err := m.Validate(true); err != nil {
		return domain.Level{}, err
	}
	var out domain.Level
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		r, ok, err := apply(ctx, ref, m.Warehouse, m.Quantity, now)
		if err != nil {
			return err
		}
		if !ok {
			cur, exists, err := s.store.Level(ctx, ref, m.Warehouse)
			if err != nil {
				return err
			}
			if !exists {
				return errs.New(domain.ErrNotFound, "no stock of %s is recorded in %s", ref, m.Warehouse)
			}
			return errs.New(domain.ErrNotReserved, "cannot %s %d of %s in %s: %d are reserved", kind, m.Quantity, ref, m.Warehouse, cur.Reserved)
		}
		if err := s.store.Journal(ctx, store.Movement{ProductRef: ref, WarehouseCode: m.Warehouse, Kind: kind, Quantity: m.Quantity, Reference: m.Reference, CreatedAt: now}); err != nil {
			return err
		}
		out = toLevel(r)
		return s.emit(ctx, "stock."+settled[kind], out, kind, m.Quantity, m.Reference)
	})
	return out, err
}

// Count returns how many stock levels there are.
func (s *Service) Count(ctx context.Context) (int64, error) { return s.store.Count(ctx) }

// settled names the event of each kind of settlement.
var settled = map[string]string{"release": "released", "ship": "shipped"}

// emit writes a stock event about level l in the transaction ctx carries.
// Its aggregate is the level, "P-000042/AMS1", the same id that a backfill
// of inv_stock by its stock_key column gives, so that live and snapshot
// events of one level share a partition and a watermark.
func (s *Service) emit(ctx context.Context, eventType string, l domain.Level, kind string, qty int, reference string) error {
	return s.events.Emit(ctx, domain.StockAggregate, domain.StockKey(l.ProductRef, l.Warehouse), eventType, domain.StockEvent{
		Level:    l,
		Movement: &domain.Movement{Kind: kind, Quantity: qty, Reference: reference},
	})
}

func toLevel(r store.Row) domain.Level {
	return domain.Level{
		ProductRef: r.ProductRef, Warehouse: r.WarehouseCode,
		OnHand: r.OnHand, Reserved: r.Reserved, Available: r.QtyAvailable,
		Version: r.Version, UpdatedAt: r.UpdatedAt.UTC(),
	}
}
