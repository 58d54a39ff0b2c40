// Package service is the orders service's core: the monolith's orders
// contract (list, get, place, pay, ship, cancel) over the event-sourced
// order aggregate for writes and its read models for reads. Placing an
// order is a saga (PlaceOrder): reserve the lines' stock at the inventory
// service, authorize the payment at the monolith's payments module, then
// append the order's events; a step that fails for good has the ones
// before it compensated, last first. Customers and prices come from the
// local read models the orders ACL feeds from the monolith's events, never
// from a call to the monolith.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/readmodel"
	"github.com/stranglerkit/strangler/extracted/orders/store"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/saga"
)

// PlaceOrder is the name of the placement saga's definition.
const PlaceOrder = "place-order"

// The placement saga's steps.
const (
	StepReserve   = "reserve-stock"
	StepAuthorize = "authorize-payment"
	StepConfirm   = "confirm-order"
)

// SagaID is the id of order id's placement saga.
func SagaID(id int64) string { return "order-" + strconv.FormatInt(id, 10) }

// Reference is what the inventory journals the order's moves under, as
// the monolith does.
func Reference(id int64) string { return "order/" + strconv.FormatInt(id, 10) }

// lineKey is the idempotency key of one line's move in a step.
func lineKey(stepKey string, lineNo int) string { return stepKey + "/" + strconv.Itoa(lineNo) }

// Config is what the core needs.
type Config struct {
	// DB is the service's database, migrated.
	DB *gorm.DB
	// Inventory and Payments are the saga's participants.
	Inventory *Inventory
	Payments  *Payments
	// StepTimeout bounds each attempt of a step.
	StepTimeout time.Duration
	// CompensationAttempts is how many times a compensation is tried
	// before the saga goes manual. If zero, the forward steps' 5.
	CompensationAttempts int
	// PlaceTimeout is how long Place waits for the saga.
	PlaceTimeout time.Duration
	// Logger receives what goes wrong. If nil, slog.Default().
	Logger *slog.Logger
	// Now stamps orders. If nil, time.Now.
	Now func() time.Time
	// Wake, if set, is called after each append, so that the read models'
	// runner applies the events at once.
	Wake func()
}

// Service is the orders service's core.
type Service struct {
	cfg   Config
	db    *gorm.DB
	store *store.Store
	rm    *aclorders.ReadModels
	ids   *aclorders.IDs
	def   *saga.Definition
	orch  *saga.Orchestrator
	owner *servicekit.Ownership
	log   *slog.Logger

	// failures keeps, for the placements this process waits on, the
	// participant's refusal that made the saga compensate, so that Place
	// answers with the monolith's problem.
	failures sync.Map
}

// New builds the core; SetOrchestrator completes it.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	st, err := store.New(cfg.DB, store.Options{})
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, db: cfg.DB, store: st, rm: aclorders.NewReadModels(cfg.DB), ids: aclorders.NewIDs(cfg.DB), owner: servicekit.NewOwnership(cfg.DB), log: cfg.Logger}
	s.rm.OnEmailChange = s.changeEmail
	s.def = s.definition()
	return s, nil
}

// Ownership is the switch that decides whether the service takes order
// writes, persisted in the service's settings table; it is off until
// loaded.
func (s *Service) Ownership() *servicekit.Ownership { return s.owner }

// checkOwner refuses a write while the service holds a read replica, before
// the write reads or changes anything: no order id is taken, no saga
// started, no participant called. A placement saga that started while
// the service owned the orders runs to its end after ownership is taken
// away; the orchestrator does not ask.
func (s *Service) checkOwner() error {
	if !s.owner.Owner() {
		return servicekit.NotOwner("the orders service is a read replica: order writes go to the monolith until the ownership flip")
	}
	return nil
}

// Definition is the placement saga, for the orchestrator.
func (s *Service) Definition() *saga.Definition { return s.def }

// SetOrchestrator gives the core the orchestrator that runs Definition.
func (s *Service) SetOrchestrator(o *saga.Orchestrator) { s.orch = o }

// ReadModels are the local read models of customers and prices.
func (s *Service) ReadModels() *aclorders.ReadModels { return s.rm }

// Store is the order aggregates' store.
func (s *Service) Store() *store.Store { return s.store }

func (s *Service) stamp() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// placement is the saga's data: the order as it will be placed, filled in
// by the steps.
type placement struct {
	Order domain.Placed `json:"order"`
	// Reserved marks the lines whose stock is reserved, by line number.
	Reserved map[int]bool `json:"reserved,omitempty"`
	// AuthorizationID is the payment authorization, once authorized.
	AuthorizationID int64 `json:"authorization_id,omitempty"`
}

func (s *Service) definition() *saga.Definition {
	retry := saga.Retry{MaxAttempts: 5, Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second}
	// A compensation outlasts a participant's restart: its waits grow to
	// 5 s, over CompensationAttempts attempts.
	comp := saga.Retry{MaxAttempts: cmp.Or(s.cfg.CompensationAttempts, retry.MaxAttempts), Backoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second}
	return &saga.Definition{Name: PlaceOrder, Steps: []saga.Step{
		{Name: StepReserve, Do: s.reserve, Compensate: s.release, Timeout: s.cfg.StepTimeout * 3, Retry: retry, CompensateRetry: comp},
		{Name: StepAuthorize, Do: s.authorize, Compensate: s.void, Timeout: s.cfg.StepTimeout, Retry: retry, CompensateRetry: comp},
		{Name: StepConfirm, Do: s.confirm, Timeout: s.cfg.StepTimeout, Retry: retry},
	}}
}

// reserve reserves each line's stock at the inventory service, one key per
// line, in SKU order so that two orders of the same products take their
// stock in the same order.
func (s *Service) reserve(ctx context.Context, x *saga.Exec) error {
	var p placement
	if err := x.Decode(&p); err != nil {
		return saga.Permanent(err)
	}
	if p.Reserved == nil {
		p.Reserved = map[int]bool{}
	}
	order := make([]int, len(p.Order.Lines))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return p.Order.Lines[order[a]].SKU < p.Order.Lines[order[b]].SKU })
	for _, i := range order {
		l := &p.Order.Lines[i]
		it, err := s.cfg.Inventory.Reserve(ctx, lineKey(x.Key, l.LineNo), l.SKU, l.Quantity, Reference(p.Order.ID))
		if err != nil {
			s.noteFailure(x.SagaID, err)
			return fmt.Errorf("reserve %d of %s for order %d: %w", l.Quantity, l.SKU, p.Order.ID, err)
		}
		l.Warehouse = it.Warehouse
		if code, ok := aclinv.WarehouseCode(it.Warehouse); ok {
			l.Warehouse = code
		}
		p.Reserved[l.LineNo] = true
	}
	return x.Update(p)
}

// release releases each line's reservation by its key; the inventory
// service's guard makes the release of a line never reserved a recorded
// no-op that refuses the reservation should it arrive late.
func (s *Service) release(ctx context.Context, x *saga.Exec) error {
	var p placement
	if err := x.Decode(&p); err != nil {
		return saga.Permanent(err)
	}
	for _, l := range p.Order.Lines {
		if err := s.cfg.Inventory.Release(ctx, lineKey(x.Key, l.LineNo), l.SKU); err != nil {
			return fmt.Errorf("release %s for order %d: %w", l.SKU, p.Order.ID, err)
		}
	}
	return nil
}

func (s *Service) authorize(ctx context.Context, x *saga.Exec) error {
	var p placement
	if err := x.Decode(&p); err != nil {
		return saga.Permanent(err)
	}
	a, err := s.cfg.Payments.Authorize(ctx, x.Key, p.Order.CustomerID, p.Order.TotalCents)
	if err != nil {
		s.noteFailure(x.SagaID, err)
		return fmt.Errorf("authorize %d for order %d: %w", p.Order.TotalCents, p.Order.ID, err)
	}
	p.AuthorizationID = a.ID
	return x.Update(p)
}

func (s *Service) void(ctx context.Context, x *saga.Exec) error {
	if err := s.cfg.Payments.Void(ctx, x.Key); err != nil {
		return fmt.Errorf("void %s: %w", x.Key, err)
	}
	return nil
}

// confirm appends order.placed with the reservation and the
// authorization. A repeat after a crash finds the order placed by this
// saga and changes nothing.
func (s *Service) confirm(ctx context.Context, x *saga.Exec) error {
	var p placement
	if err := x.Decode(&p); err != nil {
		return saga.Permanent(err)
	}
	placed := p.Order
	placed.StockReserved = true
	placed.AuthorizationID = strconv.FormatInt(p.AuthorizationID, 10)
	_, err := s.store.Execute(ctx, placed.ID, func(o domain.Order) ([]eventsource.Event, error) {
		if o.Exists() && o.AuthorizationID == placed.AuthorizationID {
			return nil, nil
		}
		return o.Place(placed)
	})
	if errors.Is(err, domain.ErrExists) || errors.Is(err, domain.ErrInvalid) {
		return saga.Permanent(err)
	}
	s.cfg.Wake()
	return err
}

func (s *Service) noteFailure(sagaID string, err error) {
	var pe *ProblemError
	if saga.IsPermanent(err) && errors.As(err, &pe) {
		s.failures.Store(sagaID, pe)
	}
}

// PendingError is Place's answer for a saga still running when the wait
// ended: the order will be placed or refused later.
type PendingError struct {
	ID    int64
	State saga.State
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("order %d: placement saga %s is still %s", e.ID, SagaID(e.ID), e.State)
}

// Place checks the customer and prices the lines from the local read
// models, then runs the placement saga and waits for it, up to
// PlaceTimeout: a saga still running gives a *PendingError.
func (s *Service) Place(ctx context.Context, in NewOrder) (aclorders.LegacyOrder, error) {
	if err := s.checkOwner(); err != nil {
		return aclorders.LegacyOrder{}, err
	}
	if errs := in.check(); len(errs) > 0 {
		return aclorders.LegacyOrder{}, httpx.Invalid(errs...)
	}
	cust, ok, err := s.rm.Customer(ctx, in.CustomerID)
	if err != nil {
		return aclorders.LegacyOrder{}, err
	}
	if !ok || cust.Status == aclorders.DeletedCustomer {
		p := httpx.Unprocessable("unknown-customer", "Unknown customer", "no customer has id %d", in.CustomerID)
		p.Errors = []httpx.FieldError{{Field: "customer_id", Message: "no customer has this id"}}
		return aclorders.LegacyOrder{}, p
	}
	lines, currency, err := s.price(ctx, in.Lines)
	if err != nil {
		return aclorders.LegacyOrder{}, err
	}
	id, err := s.ids.Next(ctx)
	if err != nil {
		return aclorders.LegacyOrder{}, err
	}
	placed := domain.Placed{ID: id, CustomerID: cust.ID, CustomerEmail: cust.Email, Currency: currency, Lines: lines, PlacedAt: s.stamp()}
	for _, l := range lines {
		placed.TotalCents += l.LineTotalCents
	}
	sid := SagaID(id)
	defer s.failures.Delete(sid)
	if _, err := s.orch.Start(ctx, PlaceOrder, sid, placement{Order: placed}); err != nil {
		return aclorders.LegacyOrder{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.PlaceTimeout)
	defer cancel()
	sg, err := s.orch.Wait(wctx, sid)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return aclorders.LegacyOrder{}, &PendingError{ID: id, State: saga.Running}
		}
		return aclorders.LegacyOrder{}, err
	}
	switch sg.State {
	case saga.Completed:
		o, err := s.store.Get(ctx, id)
		if err != nil {
			return aclorders.LegacyOrder{}, err
		}
		return Legacy(o)
	case saga.Compensated:
		if v, ok := s.failures.Load(sid); ok {
			return aclorders.LegacyOrder{}, refusal(v.(*ProblemError), placed)
		}
		return aclorders.LegacyOrder{}, httpx.NewProblem(503, "", "", fmt.Sprintf("order %d was not placed: %s", id, sg.Error))
	default:
		return aclorders.LegacyOrder{}, httpx.NewProblem(503, "", "",
			fmt.Sprintf("order %d: placement saga %s is %s and waits for an operator: %s", id, sid, sg.State, sg.Error))
	}
}

// refusal turns a participant's refusal into the monolith's problem: out
// of stock is its 409; a declined payment, an unknown customer at the
// payments module and the rest stay the participant's problem.
func refusal(pe *ProblemError, o domain.Placed) error {
	if pe.Slug() == "out-of-stock" {
		return httpx.Conflict("out-of-stock", "Out of stock", "%s", pe.Problem.Detail)
	}
	p := *pe.Problem
	p.Instance, p.RequestID = "", ""
	return &p
}

// price reads each line's SKU from the price read model and copies the
// product in, with the monolith's problems for unknown, inactive and
// mixed-currency lines.
func (s *Service) price(ctx context.Context, in []NewLine) ([]domain.Line, string, error) {
	var unknown, inactive, mixed []httpx.FieldError
	currency := ""
	out := make([]domain.Line, len(in))
	for i, l := range in {
		field := "lines[" + strconv.Itoa(i) + "].sku"
		p, ok, err := s.rm.Price(ctx, l.SKU)
		if err != nil {
			return nil, "", err
		}
		switch {
		case !ok:
			unknown = append(unknown, httpx.FieldError{Field: field, Message: "no product has SKU " + l.SKU})
			continue
		case !p.Active:
			inactive = append(inactive, httpx.FieldError{Field: field, Message: l.SKU + " is no longer for sale"})
			continue
		case currency == "":
			currency = p.Currency
		case p.Currency != currency:
			mixed = append(mixed, httpx.FieldError{Field: field, Message: fmt.Sprintf("%s is priced in %s, the lines before it in %s; an order has one currency", l.SKU, p.Currency, currency)})
			continue
		}
		name, err := s.productName(ctx, p.SKU)
		if err != nil {
			return nil, "", err
		}
		out[i] = domain.Line{LineNo: i + 1, SKU: p.SKU, ProductRef: p.ProductRef, ProductName: name, UnitPriceCents: p.PriceCents,
			Quantity: l.Quantity, LineTotalCents: p.PriceCents * int64(l.Quantity)}
	}
	switch {
	case len(unknown) > 0:
		return nil, "", unprocessable("unknown-sku", "Unknown SKU", unknown)
	case len(inactive) > 0:
		return nil, "", unprocessable("product-inactive", "Product not for sale", inactive)
	case len(mixed) > 0:
		return nil, "", httpx.Invalid(mixed...)
	}
	return out, currency, nil
}

func unprocessable(slug, title string, fields []httpx.FieldError) error {
	msgs := make([]string, len(fields))
	for i, f := range fields {
		msgs[i] = f.Message
	}
	p := httpx.Unprocessable(slug, title, "%s", strings.Join(msgs, "; "))
	p.Errors = fields
	return p
}

// Get returns an order from the read model, or from its events when the
// read model has not caught up with it yet: when it does not hold the
// order, or holds it at a version below its stream's (a client reading
// what it just wrote, as the monolith lets it).
func (s *Service) Get(ctx context.Context, id int64) (aclorders.LegacyOrder, error) {
	o, err := readmodel.Get(ctx, s.db, id)
	if err == nil {
		var v int64
		if v, err = s.store.Events().Version(ctx, domain.AggregateID(id)); err == nil && v > o.Version {
			err = domain.ErrNotFound
		}
	}
	if errors.Is(err, domain.ErrNotFound) {
		o, err = s.store.Get(ctx, id)
	}
	if err != nil {
		return aclorders.LegacyOrder{}, notFound(id, err)
	}
	return Legacy(o)
}

func notFound(id int64, err error) error {
	if errors.Is(err, domain.ErrNotFound) {
		return httpx.NotFound("no order has id %d", id)
	}
	return err
}

// Pay marks a placed order paid and captures its payment.
func (s *Service) Pay(ctx context.Context, id int64) (aclorders.LegacyOrder, error) {
	o, err := s.load(ctx, id, domain.StatusPaid)
	if err != nil {
		return aclorders.LegacyOrder{}, err
	}
	if o.AuthorizationID != "" {
		auth, err := strconv.ParseInt(o.AuthorizationID, 10, 64)
		if err != nil {
			return aclorders.LegacyOrder{}, fmt.Errorf("order %d: authorization id %q: %w", id, o.AuthorizationID, err)
		}
		if err := s.cfg.Payments.Capture(ctx, auth); err != nil {
			return aclorders.LegacyOrder{}, participantProblem(err)
		}
	}
	return s.apply(ctx, id, func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(s.stamp()) })
}

// Ship marks a paid order shipped and ships its reserved stock, once per
// line (its own idempotency key).
func (s *Service) Ship(ctx context.Context, id int64) (aclorders.LegacyOrder, error) {
	o, err := s.load(ctx, id, domain.StatusShipped)
	if err != nil {
		return aclorders.LegacyOrder{}, err
	}
	for _, l := range o.Lines {
		wh, ok := aclinv.WarehouseID(l.Warehouse)
		if !ok {
			wh = l.Warehouse
		}
		if err := s.cfg.Inventory.Ship(ctx, lineKey(saga.Key(SagaID(id), "ship"), l.LineNo), l.SKU, wh, l.Quantity, Reference(id)); err != nil {
			return aclorders.LegacyOrder{}, participantProblem(err)
		}
	}
	return s.apply(ctx, id, func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(s.stamp()) })
}

// Cancel cancels a placed or paid order: it releases its stock and voids
// its authorization with the placement saga's keys (a captured one stays
// captured: refunds are not modelled), then appends the cancellation. An
// order imported from the monolith releases its lines without a key.
func (s *Service) Cancel(ctx context.Context, id int64) (aclorders.LegacyOrder, error) {
	o, err := s.load(ctx, id, domain.StatusCancelled)
	if err != nil {
		return aclorders.LegacyOrder{}, err
	}
	for _, l := range o.Lines {
		if o.AuthorizationID != "" {
			err = s.cfg.Inventory.Release(ctx, lineKey(saga.Key(SagaID(id), StepReserve), l.LineNo), l.SKU)
		} else {
			wh, ok := aclinv.WarehouseID(l.Warehouse)
			if !ok {
				wh = l.Warehouse
			}
			err = s.cfg.Inventory.ReleaseUnkeyed(ctx, l.SKU, wh, l.Quantity, Reference(id))
		}
		if err != nil {
			return aclorders.LegacyOrder{}, participantProblem(err)
		}
	}
	if o.AuthorizationID != "" && o.Status == domain.StatusPlaced {
		if err := s.cfg.Payments.Void(ctx, saga.Key(SagaID(id), StepAuthorize)); err != nil {
			return aclorders.LegacyOrder{}, participantProblem(err)
		}
	}
	return s.apply(ctx, id, func(o domain.Order) ([]eventsource.Event, error) {
		return o.Cancel("cancelled by the customer", s.stamp())
	})
}

// load returns the order for a write (Pay, Ship, Cancel), refusing it
// while the service does not own the orders, and refusing a move to status
// to that the order's status does not allow, before any participant is
// called.
func (s *Service) load(ctx context.Context, id int64, to domain.Status) (domain.Order, error) {
	if err := s.checkOwner(); err != nil {
		return domain.Order{}, err
	}
	o, err := s.store.Get(ctx, id)
	if err != nil {
		return o, notFound(id, err)
	}
	for _, from := range domain.From(to) {
		if o.Status == from {
			return o, nil
		}
	}
	return o, transitionProblem(&domain.TransitionError{ID: id, From: o.Status, To: to})
}

func (s *Service) apply(ctx context.Context, id int64, cmd func(domain.Order) ([]eventsource.Event, error)) (aclorders.LegacyOrder, error) {
	o, err := s.store.Execute(ctx, id, cmd)
	if err != nil {
		if errors.Is(err, domain.ErrTransition) {
			return aclorders.LegacyOrder{}, transitionProblem(err)
		}
		return aclorders.LegacyOrder{}, notFound(id, err)
	}
	s.cfg.Wake()
	return Legacy(o)
}

func transitionProblem(err error) error {
	return httpx.Conflict("order-status", "Order status does not allow this", "%s", err.Error())
}

// participantProblem is the answer when a participant refused or failed
// a move of an order that the order's status allows: a 502 names the
// participant's problem, a participant that cannot be reached is a 503.
func participantProblem(err error) error {
	var pe *ProblemError
	if errors.As(err, &pe) {
		return httpx.NewProblem(502, "", "", pe.Error())
	}
	return httpx.NewProblem(503, "", "", err.Error())
}

// changeEmail appends the customer's new e-mail to each of their orders,
// in the read model event's transaction.
func (s *Service) changeEmail(ctx context.Context, tx *gorm.DB, cmd aclorders.UpdateCustomerEmail) error {
	var ids []int64
	if err := tx.Table("order_views").Where("customer_id = ? AND customer_email <> ?", cmd.CustomerID, cmd.Email).Pluck("id", &ids).Error; err != nil {
		return fmt.Errorf("orders of customer %d: %w", cmd.CustomerID, err)
	}
	for _, id := range ids {
		if _, err := s.store.Execute(ctx, id, func(o domain.Order) ([]eventsource.Event, error) { return o.ChangeCustomerEmail(cmd.Email) }); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		s.cfg.Wake()
	}
	return nil
}

// Legacy is an order in the monolith's contract, legacy status code and
// redundant totals included.
func Legacy(o domain.Order) (aclorders.LegacyOrder, error) {
	ao := aclorders.Order{ID: o.ID, CustomerID: o.CustomerID, CustomerEmail: o.CustomerEmail, State: aclorders.State(o.Status), Currency: o.Currency,
		PlacedAt: o.PlacedAt, PaidAt: o.PaidAt, ShippedAt: o.ShippedAt, CancelledAt: o.CancelledAt, Version: int(o.Version), UpdatedAt: o.UpdatedAt}
	for _, l := range o.Lines {
		ao.Lines = append(ao.Lines, aclorders.Line{No: l.LineNo, SKU: l.SKU, ProductRef: l.ProductRef, ProductName: l.ProductName,
			UnitPriceCents: l.UnitPriceCents, Quantity: l.Quantity, Warehouse: l.Warehouse})
	}
	return aclorders.ToLegacy(ao)
}

// Page is one page of List, as the monolith's.
type Page struct {
	Items      []aclorders.LegacyOrder `json:"items"`
	NextCursor string                  `json:"next_cursor,omitempty"`
}

// List returns a page of orders from the read model, newest first; it
// trails the writes by the projection's lag.
func (s *Service) List(ctx context.Context, customerID int64, status domain.Status, beforeID int64, limit int) (Page, bool, error) {
	os, err := readmodel.List(ctx, s.db, customerID, status, beforeID, limit+1)
	if err != nil {
		return Page{}, false, err
	}
	more := len(os) > limit
	if more {
		os = os[:limit]
	}
	out := Page{Items: make([]aclorders.LegacyOrder, 0, len(os))}
	for _, o := range os {
		l, err := Legacy(o)
		if err != nil {
			return Page{}, false, err
		}
		out.Items = append(out.Items, l)
	}
	return out, more, nil
}

// productName returns the catalog name of sku from product_names.
func (s *Service) productName(ctx context.Context, sku string) (string, error) {
	var names []string
	if err := db.Conn(ctx, s.db).Table("product_names").Where("sku = ?", sku).Limit(1).Pluck("name", &names).Error; err != nil {
		return "", fmt.Errorf("product name of %s: %w", sku, err)
	}
	if len(names) == 0 {
		return "", nil
	}
	return names[0], nil
}
