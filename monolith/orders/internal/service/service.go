// Package service implements the orders module's API. It reaches the
// customers, catalog and inventory modules only through their APIs, and
// runs each order change, theirs included, in one transaction.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/internal/errs"
	"github.com/stranglerkit/strangler/monolith/internal/events"
	"github.com/stranglerkit/strangler/monolith/internal/page"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders/internal/domain"
	"github.com/stranglerkit/strangler/monolith/orders/internal/store"
)

const listName = "orders"

// Deps are the other modules the service calls.
type Deps struct {
	Catalog   catalog.API
	Customers customers.API
	Inventory inventory.API
	// Log receives the failures of best-effort compensations (default
	// slog.Default()).
	Log *slog.Logger
}

// Service is the module's implementation.
type Service struct {
	db     *gorm.DB
	store  *store.Store
	deps   Deps
	events *events.Emitter
	now    func() time.Time
	log    *slog.Logger
}

// New returns the service on gdb.
func New(gdb *gorm.DB, deps Deps, now func() time.Time) *Service {
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: gdb, store: store.New(gdb), deps: deps, events: events.New("orders"), now: now, log: log}
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

type cursor struct {
	ID int64 `json:"id"`
}

// List returns a page of orders, newest first.
func (s *Service) List(ctx context.Context, q domain.Query) (domain.Page, error) {
	if q.Status != 0 && !q.Status.Valid() {
		return domain.Page{}, httpx.BadRequest("status must be one of 10, 20, 30, 90, not %d", int(q.Status))
	}
	if q.CustomerID < 0 {
		return domain.Page{}, httpx.BadRequest("customer_id must be a positive integer, not %d", q.CustomerID)
	}
	limit, err := page.Limit(q.Limit)
	if err != nil {
		return domain.Page{}, err
	}
	var before cursor
	if q.Cursor != "" {
		if err := page.Decode(listName, q.Cursor, &before); err != nil {
			return domain.Page{}, err
		}
	}
	rows, err := s.store.List(ctx, q.CustomerID, int(q.Status), before.ID, limit+1)
	if err != nil {
		return domain.Page{}, err
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = page.Encode(listName, cursor{ID: rows[limit-1].ID})
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	lines, err := s.store.Lines(ctx, ids...)
	if err != nil {
		return domain.Page{}, err
	}
	byOrder := map[int64][]store.LineRow{}
	for _, l := range lines {
		byOrder[l.OrderID] = append(byOrder[l.OrderID], l)
	}
	out := domain.Page{Items: make([]domain.Order, 0, len(rows)), NextCursor: next}
	for _, r := range rows {
		out.Items = append(out.Items, toOrder(r, byOrder[r.ID]))
	}
	return out, nil
}

// Get returns order id with its lines.
func (s *Service) Get(ctx context.Context, id int64) (domain.Order, error) {
	r, ok, err := s.store.Get(ctx, id)
	if err != nil {
		return domain.Order{}, err
	}
	if !ok {
		return domain.Order{}, errs.New(domain.ErrNotFound, "no order has id %d", id)
	}
	lines, err := s.store.Lines(ctx, id)
	if err != nil {
		return domain.Order{}, err
	}
	return toOrder(r, lines), nil
}

// Place places an order: it checks the customer and prices the lines from
// the catalog, then reserves their stock and writes the order in one
// transaction, so that an order that fails leaves no reservation behind.
// The checks are reads that come before the transaction, as they would
// from the remote modules they may become: on SQLite, whose one writer
// holds its lock for the whole transaction, they then do not hold up the
// other orders, and on Postgres, where the transaction's reads take no
// locks, nothing changes. When the inventory is a remote service, which
// the transaction does not cover, compensate releases the reservations a
// failed order made.
func (s *Service) Place(ctx context.Context, in domain.NewOrder) (domain.Order, error) {
	if errs := in.Check(catalog.NormalizeSKU); len(errs) > 0 {
		return domain.Order{}, invalid(errs)
	}
	// The customer and the prices are independent lookups in two modules:
	// Together sends them to the database in one round trip.
	var (
		cust              customers.Customer
		lines             []pricedLine
		custErr, priceErr error
	)
	db.Together(ctx, s.db,
		func(ctx context.Context) { cust, custErr = s.deps.Customers.Get(ctx, in.CustomerID) },
		func(ctx context.Context) { lines, priceErr = s.price(ctx, in.Lines) })
	err := custErr
	if errors.Is(err, customers.ErrNotFound) {
		return domain.Order{}, unprocessable(domain.ErrUnknownCustomer, "unknown-customer", "Unknown customer",
			fmt.Sprintf("no customer has id %d", in.CustomerID), domain.FieldError{Field: "customer_id", Message: "no customer has this id"})
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("look up customer %d: %w", in.CustomerID, err)
	}
	if priceErr != nil {
		return domain.Order{}, priceErr
	}
	var out domain.Order
	err = db.Transact(ctx, s.db, func(ctx context.Context) error {
		now := s.stamp()
		r := store.Row{
			CustomerID: cust.ID, CustomerEmail: cust.Email, Status: int(domain.StatusPlaced),
			Currency: lines[0].currency, PlacedAt: now, Version: 1, UpdatedAt: now,
		}
		rows := make([]store.LineRow, len(lines))
		for i, l := range lines {
			r.TotalCents += l.row.LineTotalCents
			rows[i] = l.row
		}
		if err := s.store.InsertOrder(ctx, &r); err != nil {
			return err
		}
		// Reserve in product reference order, so that two orders for the
		// same products lock their stock rows in the same order and cannot
		// deadlock on Postgres.
		order := make([]int, len(rows))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return rows[order[a]].ProductRef < rows[order[b]].ProductRef })
		ref := reference(r.ID)
		want := make([]inventory.Reservation, len(order))
		for k, i := range order {
			want[k] = inventory.Reservation{ProductRef: rows[i].ProductRef, Move: inventory.Move{Quantity: rows[i].Quantity, Reference: ref}}
		}
		var held []reservation
		// Every failure from the first reservation on goes through
		// compensate before the transaction rolls back.
		err = func() error {
			levels, err := s.deps.Inventory.ReserveAll(ctx, want)
			for k, lvl := range levels {
				w := want[k]
				rows[order[k]].WarehouseCode = lvl.Warehouse
				held = append(held, reservation{ref: w.ProductRef, move: inventory.Move{Warehouse: lvl.Warehouse, Quantity: w.Quantity, Reference: ref}})
			}
			if err != nil {
				// The reservations before the failed one are held.
				l := rows[order[min(len(levels), len(order)-1)]]
				if errors.Is(err, inventory.ErrOutOfStock) {
					return errs.New(domain.ErrOutOfStock, "not enough stock to reserve %d of %s (%s) in any one warehouse", l.Quantity, l.SKU, l.ProductRef)
				}
				return fmt.Errorf("reserve %d of %s for order %d: %w", l.Quantity, l.ProductRef, r.ID, err)
			}
			if err := s.store.QueueLines(ctx, r.ID, rows); err != nil {
				return err
			}
			out = toOrder(r, rows)
			return s.events.Emit(ctx, "order", strconv.FormatInt(out.ID, 10), "order.placed", out)
		}()
		if err != nil {
			s.compensate(ctx, r.ID, held, err)
		}
		return err
	})
	return out, err
}

// compensate releases the reservations a failed Place made, last first,
// before its transaction rolls back: the saga step that undoes Reserve. It
// runs inside the transaction on purpose. A local inventory module joins
// that transaction, so its releases roll back together with its
// reservations and change nothing; a remote inventory service (the
// anti-corruption-layer client after the ownership flip) is outside it, so
// the releases are real and return the units the rollback cannot. It is
// best effort: a release that fails is logged and the order's own error is
// returned either way. The releases get a context of their own, so that
// they still run when the caller's context is what ended the order.
//
// Two cases stay open until a saga with durable compensation replaces this
// step: a reservation whose answer never came (a timeout after the service
// reserved) is not known and so not released, and a failure of the commit
// itself, after every step succeeded, is not compensated, because the
// local module's reservations are then rolled back already and releasing
// them again would release another order's units. Both leave units
// reserved under the order's reference in the service.
func (s *Service) compensate(ctx context.Context, orderID int64, held []reservation, cause error) {
	if len(held) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
	defer cancel()
	for i := len(held) - 1; i >= 0; i-- {
		h := held[i]
		if _, err := s.deps.Inventory.Release(cctx, h.ref, h.move); err != nil {
			s.log.WarnContext(ctx, "orders: could not release a reservation of a failed order",
				"order_id", orderID, "product_ref", h.ref, "warehouse", h.move.Warehouse, "quantity", h.move.Quantity,
				"reference", h.move.Reference, "cause", cause.Error(), "error", err.Error())
		}
	}
}

// reservation is one reservation Place made, as Release takes it back.
type reservation struct {
	ref  string
	move inventory.Move
}

// compensationTimeout bounds the releases of one failed order.
const compensationTimeout = 5 * time.Second

type pricedLine struct {
	row      store.LineRow
	currency string
}

// price looks the lines' SKUs up in the catalog and returns the lines with
// the product's reference, name and price copied in.
func (s *Service) price(ctx context.Context, lines []domain.NewLine) ([]pricedLine, error) {
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	products, err := s.deps.Catalog.BySKU(ctx, skus)
	if err != nil {
		return nil, fmt.Errorf("price order lines: %w", err)
	}
	var unknown, inactive, mixed []domain.FieldError
	currency := ""
	out := make([]pricedLine, len(lines))
	for i, l := range lines {
		field := "lines[" + strconv.Itoa(i) + "].sku"
		p, ok := products[l.SKU]
		switch {
		case !ok:
			unknown = append(unknown, domain.FieldError{Field: field, Message: "no product has SKU " + l.SKU})
			continue
		case !p.Active:
			inactive = append(inactive, domain.FieldError{Field: field, Message: l.SKU + " is no longer for sale"})
			continue
		case currency == "":
			currency = p.Currency
		case p.Currency != currency:
			mixed = append(mixed, domain.FieldError{Field: field, Message: fmt.Sprintf("%s is priced in %s, the lines before it in %s; an order has one currency", l.SKU, p.Currency, currency)})
			continue
		}
		out[i] = pricedLine{currency: p.Currency, row: store.LineRow{
			LineNo: i + 1, SKU: p.SKU, ProductRef: p.Ref, ProductName: p.Name,
			UnitPriceCents: p.PriceCents, Quantity: l.Quantity, LineTotalCents: p.PriceCents * int64(l.Quantity),
		}}
	}
	switch {
	case len(unknown) > 0:
		return nil, unprocessable(domain.ErrUnknownSKU, "unknown-sku", "Unknown SKU", joinMessages(unknown), unknown...)
	case len(inactive) > 0:
		return nil, unprocessable(domain.ErrInactiveProduct, "product-inactive", "Product not for sale", joinMessages(inactive), inactive...)
	case len(mixed) > 0:
		return nil, invalid(mixed)
	}
	return out, nil
}

// Pay marks a placed order paid.
func (s *Service) Pay(ctx context.Context, id int64) (domain.Order, error) {
	return s.transition(ctx, id, domain.StatusPaid, "paid_at", nil)
}

// Ship marks a paid order shipped and ships its reserved stock.
func (s *Service) Ship(ctx context.Context, id int64) (domain.Order, error) {
	return s.transition(ctx, id, domain.StatusShipped, "shipped_at", s.deps.Inventory.Ship)
}

// Cancel cancels a placed or paid order and releases its reserved stock.
func (s *Service) Cancel(ctx context.Context, id int64) (domain.Order, error) {
	return s.transition(ctx, id, domain.StatusCancelled, "cancelled_at", s.deps.Inventory.Release)
}

// transition moves order id to status to and applies stock, if given, to
// each line's reservation, in one transaction.
func (s *Service) transition(ctx context.Context, id int64, to domain.Status, stampCol string,
	stock func(context.Context, string, inventory.Move) (inventory.Level, error)) (domain.Order, error) {
	from := domain.From(to)
	fromCodes := make([]int, len(from))
	for i, f := range from {
		fromCodes[i] = int(f)
	}
	var out domain.Order
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		r, ok, err := s.store.Transition(ctx, id, fromCodes, int(to), stampCol, s.stamp())
		if err != nil {
			return err
		}
		if !ok {
			cur, exists, err := s.store.Get(ctx, id)
			if err != nil {
				return err
			}
			if !exists {
				return errs.New(domain.ErrNotFound, "no order has id %d", id)
			}
			names := make([]string, len(from))
			for i, f := range from {
				names[i] = fmt.Sprintf("%d (%s)", int(f), f)
			}
			return errs.New(domain.ErrTransition, "order %d is %d (%s); only an order in %s can become %d (%s)",
				id, cur.Status, domain.Status(cur.Status), strings.Join(names, " or "), int(to), to)
		}
		lines, err := s.store.Lines(ctx, id)
		if err != nil {
			return err
		}
		if stock != nil {
			sorted := append([]store.LineRow(nil), lines...)
			sort.Slice(sorted, func(a, b int) bool { return sorted[a].ProductRef < sorted[b].ProductRef })
			for _, l := range sorted {
				m := inventory.Move{Warehouse: l.WarehouseCode, Quantity: l.Quantity, Reference: reference(id)}
				if _, err := stock(ctx, l.ProductRef, m); err != nil {
					return fmt.Errorf("order %d to %s: stock of %s in %s: %w", id, to, l.ProductRef, l.WarehouseCode, err)
				}
			}
		}
		out = toOrder(r, lines)
		return s.events.Emit(ctx, "order", strconv.FormatInt(id, 10), "order."+to.String(), out)
	})
	return out, err
}

// reference names an order in the inventory's movement journal.
func reference(orderID int64) string { return "order/" + strconv.FormatInt(orderID, 10) }

func toOrder(r store.Row, lines []store.LineRow) domain.Order {
	o := domain.Order{
		ID: r.ID, CustomerID: r.CustomerID, CustomerEmail: r.CustomerEmail, Status: domain.Status(r.Status),
		Currency: r.Currency, TotalCents: r.TotalCents, Lines: make([]domain.Line, 0, len(lines)),
		PlacedAt: r.PlacedAt.UTC(), PaidAt: utc(r.PaidAt), ShippedAt: utc(r.ShippedAt), CancelledAt: utc(r.CancelledAt),
		Version: r.Version, UpdatedAt: r.UpdatedAt.UTC(),
	}
	for _, l := range lines {
		o.Lines = append(o.Lines, domain.Line{
			LineNo: l.LineNo, SKU: l.SKU, ProductRef: l.ProductRef, ProductName: l.ProductName,
			UnitPriceCents: l.UnitPriceCents, Quantity: l.Quantity, LineTotalCents: l.LineTotalCents, Warehouse: l.WarehouseCode,
		})
	}
	return o
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// orderError is a problem that also matches one of the module's sentinel
// errors, so that in-process callers can branch with errors.Is and the HTTP
// layer can write it as is.
type orderError struct {
	*httpx.Problem
	sentinel error
}

func (e orderError) Unwrap() []error { return []error{e.Problem, e.sentinel} }

func unprocessable(sentinel error, slug, title, detail string, fields ...domain.FieldError) error {
	p := httpx.Unprocessable(slug, title, "%s", detail)
	p.Errors = toFieldErrors(fields)
	return orderError{Problem: p, sentinel: sentinel}
}

func invalid(errs []domain.FieldError) error { return httpx.Invalid(toFieldErrors(errs)...) }

func toFieldErrors(errs []domain.FieldError) []httpx.FieldError {
	out := make([]httpx.FieldError, len(errs))
	for i, e := range errs {
		out[i] = httpx.FieldError{Field: e.Field, Message: e.Message}
	}
	return out
}

func joinMessages(errs []domain.FieldError) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	return strings.Join(msgs, "; ")
}
