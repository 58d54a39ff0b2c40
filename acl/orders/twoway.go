package orders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/store"
)

// LegacyOrigin is the origin tag of changes that started in the monolith:
// its outbox's, and the one the forward sync gives the events it appends
// to the service's store on the monolith's behalf.
const LegacyOrigin = "monolith"

// ForwardConsumer is the consumer group of the forward sync.
const ForwardConsumer = "orders-service"

// ForwardConfig is the forward sync's consumer config: the monolith's
// order topic, skipping events whose origin is the service (they started
// there; loop prevention). The service publishes its own order events,
// aggregate type "order" as well, to the same topic.
func ForwardConfig(topicPrefix string) consumer.Config {
	return consumer.Config{
		Name:          ForwardConsumer,
		Topics:        []string{changefeed.Topic(topicPrefix, OrderAggregate)},
		IgnoreOrigins: []string{domain.Source},
	}
}

// Forward applies the monolith's order events to the orders service's
// event store while the monolith takes the writes, and after a rollback of
// the ownership flip: an order the service has not seen is imported as it
// is (order.imported, with the legacy id as its aggregate id), and a later
// status of an order it has becomes the service's own events (order.paid,
// order.shipped, order.cancelled), so that its read models answer as the
// monolith would. A backfill's order.snapshot events are applied the same
// way, which is what makes the backfill idempotent: importing an order
// that exists changes nothing.
//
// It runs as a changefeed consumer on the service's database, so each
// event's effect and its inbox row commit together. The events it appends
// carry the monolith's origin (LegacyOrigin), so the back sync leaves
// them alone; events whose source is the service (its own, on the shared
// topic, those it appended here included) are skipped.
//
// A legacy status the service's order cannot move to (an older event, or a
// shipped order that the monolith says is paid) changes nothing and is
// counted as stale: per order the events arrive in commit order, and the
// statuses only move forward, so only a hand-made event gets there.
type Forward struct {
	orders *store.Store
	ids    *IDs
	log    *slog.Logger

	applied, stale atomic.Int64
}

// NewForward returns the forward sync into the service's database gdb,
// migrated with the service's sets and Migrations.
func NewForward(gdb *gorm.DB, log *slog.Logger) (*Forward, error) {
	if log == nil {
		log = slog.Default()
	}
	s, err := store.New(gdb, store.Options{Origin: LegacyOrigin})
	if err != nil {
		return nil, fmt.Errorf("forward sync: %w", err)
	}
	return &Forward{orders: s, ids: NewIDs(gdb), log: log}, nil
}

// Register adds the forward sync's handlers to c.
func (f *Forward) Register(c *consumer.Consumer) {
	for _, t := range []string{OrderPlaced, OrderPaid, OrderShipped, OrderCancelled, OrderSnapshot} {
		c.Handle(t, 1, f.Handle)
	}
}

// Stats counts the monolith's order events applied and those that were
// stale.
func (f *Forward) Stats() (applied, stale int64) { return f.applied.Load(), f.stale.Load() }

// Handle applies one order event of the monolith.
func (f *Forward) Handle(ctx context.Context, _ *gorm.DB, ev changefeed.Event) error {
	if ev.Origin == domain.Source || ev.Source == domain.Source {
		return nil
	}
	o, err := DecodeOrder(ev.Payload)
	if err != nil {
		return consumer.Permanent(fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err))
	}
	if err := f.ids.Observe(ctx, o.ID); err != nil {
		return err
	}
	stale := false
	_, err = f.orders.Execute(ctx, o.ID, func(cur domain.Order) ([]eventsource.Event, error) {
		evs, ok, err := Reconcile(cur, o)
		stale = !ok
		return evs, err
	})
	if errors.Is(err, domain.ErrInvalid) || errors.Is(err, ErrUnknownStatus) {
		return consumer.Permanent(fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err))
	}
	if err != nil {
		return err
	}
	if stale {
		f.stale.Add(1)
		f.log.Warn("orders forward sync: stale order event changes nothing", "event", ev.ID, "type", ev.Type, "order", o.ID, "status", o.State)
		return nil
	}
	f.applied.Add(1)
	return nil
}

// Reconcile returns the events that bring the service's order cur to the
// monolith's order o: its import when cur does not exist, else the status
// changes from cur's status to o's, in lifecycle order. ok is false when
// o's status cannot follow cur's (o is older than what the service has).
func Reconcile(cur domain.Order, o Order) (evs []eventsource.Event, ok bool, err error) {
	if !cur.Exists() {
		evs, err := cur.Import(Imported(o))
		return evs, true, err
	}
	target := domain.Status(o.State)
	if !target.Valid() {
		return nil, false, &UnknownStateError{State: o.State}
	}
	var steps []func(domain.Order) ([]eventsource.Event, error)
	at := func(t *time.Time) time.Time {
		if t != nil {
			return *t
		}
		return o.UpdatedAt
	}
	pay := func(d domain.Order) ([]eventsource.Event, error) { return d.Pay(at(o.PaidAt)) }
	ship := func(d domain.Order) ([]eventsource.Event, error) { return d.Ship(at(o.ShippedAt)) }
	cancel := func(d domain.Order) ([]eventsource.Event, error) {
		return d.Cancel("cancelled in the monolith", at(o.CancelledAt))
	}
	switch {
	case cur.Status == target:
		return nil, true, nil
	case target == domain.StatusPaid && cur.Status == domain.StatusPlaced:
		steps = append(steps, pay)
	case target == domain.StatusShipped && cur.Status == domain.StatusPlaced:
		steps = append(steps, pay, ship)
	case target == domain.StatusShipped && cur.Status == domain.StatusPaid:
		steps = append(steps, ship)
	case target == domain.StatusCancelled && cur.Status.Open():
		steps = append(steps, cancel)
	default:
		return nil, false, nil
	}
	for _, step := range steps {
		out, err := step(cur)
		if err != nil {
			return nil, false, err
		}
		for _, ev := range out {
			// The fold needs the version the store will give the event.
			ev.Version = cur.Version + 1
			if cur, err = domain.Apply(cur, ev); err != nil {
				return nil, false, err
			}
			evs = append(evs, ev)
		}
	}
	return evs, true, nil
}

// Imported is the payload of the order.imported event of a legacy order:
// the order as the monolith holds it, lines in line order, with the
// totals the lines give.
func Imported(o Order) domain.Imported {
	lines := slices.Clone(o.Lines)
	slices.SortFunc(lines, func(a, b Line) int { return a.No - b.No })
	p := domain.Imported{
		Placed: domain.Placed{ID: o.ID, CustomerID: o.CustomerID, CustomerEmail: o.CustomerEmail, Currency: o.Currency,
			TotalCents: o.TotalCents(), Lines: make([]domain.Line, 0, len(lines)), PlacedAt: o.PlacedAt},
		Status: domain.Status(o.State), PaidAt: o.PaidAt, ShippedAt: o.ShippedAt, CancelledAt: o.CancelledAt,
		LegacyVersion: o.Version,
	}
	for _, l := range lines {
		p.Lines = append(p.Lines, domainLine(l))
	}
	return p
}

func domainLine(l Line) domain.Line {
	return domain.Line{LineNo: l.No, SKU: l.SKU, ProductRef: l.ProductRef, ProductName: l.ProductName,
		UnitPriceCents: l.UnitPriceCents, Quantity: l.Quantity, LineTotalCents: l.UnitPriceCents * int64(l.Quantity), Warehouse: l.Warehouse}
}

// BackSyncConsumer is the consumer group of the back sync.
const BackSyncConsumer = "monolith-orders-acl"

// BackSyncConfig is the back sync's consumer config: the service's order
// topic, skipping events whose origin is the monolith (its own, and those
// the forward sync appended on its behalf; loop prevention).
func BackSyncConfig(topicPrefix string) consumer.Config {
	return consumer.Config{
		Name:          BackSyncConsumer,
		Topics:        []string{changefeed.Topic(topicPrefix, domain.AggregateType)},
		IgnoreOrigins: []string{LegacyOrigin},
	}
}

// BackSync applies the orders service's own order events to the
// monolith's orders and order_lines tables after the ownership flip, so
// that the monolith's remaining readers of those tables (reports, the
// customer pages) see the orders the service takes. It runs as a
// changefeed consumer on the monolith's database and writes the tables
// with SQL, as the monolith's store does: the legacy status codes, the
// redundant totals, the version counted up. It writes nothing into the
// monolith's outbox, so no event comes back to the service, and it applies
// only events whose origin is the service. Events of the saga's steps
// (stock, payment) have no column in the legacy tables and are skipped.
//
// It reads the events at their current schema versions: Register gives
// the consumer the order upcasters (domain.Upcasters), so that an outbox
// copy an older release wrote reaches Handle upcast, and Handle refuses
// an event a newer release wrote (to the dead-letter topic) rather than
// write it to the tables as if it were the version it knows.
type BackSync struct {
	upcasters *eventsource.Upcasters
	applied   atomic.Int64
}

// NewBackSync returns the back sync.
func NewBackSync() *BackSync { return &BackSync{upcasters: domain.Upcasters()} }

// Register adds the back sync's handlers, at the events' current schema
// versions, and the order upcasters to c.
func (b *BackSync) Register(c *consumer.Consumer) {
	for _, t := range []string{domain.EventPlaced, domain.EventPaid, domain.EventShipped, domain.EventCancelled, domain.EventCustomerEmailChanged} {
		c.Handle(t, domain.SchemaVersion(t), b.Handle)
	}
	b.upcasters.Each(func(eventType string, from int, up eventsource.Upcaster) {
		c.Upcast(eventType, from, consumer.Upcaster(up))
	})
}

// Applied counts the service's events written to the monolith's tables.
func (b *BackSync) Applied() int64 { return b.applied.Load() }

// ErrBackSync is wrapped by the errors of service events that the
// monolith's tables cannot take: a status change of an order they do not
// hold, or one their status does not allow.
var ErrBackSync = errors.New("order event does not fit the monolith's tables")

// Handle applies one service event to the monolith's tables in tx.
func (b *BackSync) Handle(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	if ev.Origin != domain.Source {
		return nil
	}
	id, err := orderIDOf(ev)
	if err != nil {
		return consumer.Permanent(err)
	}
	// The consumer upcasts older versions already, with the upcasters
	// Register gave it; this refuses newer ones, and upcasts for a caller
	// that hands Handle an event itself.
	up, err := b.upcasters.Upcast(eventsource.Event{Type: ev.Type, SchemaVersion: ev.SchemaVersion, Payload: ev.Payload,
		AggregateType: ev.AggregateType, AggregateID: ev.AggregateID})
	if err != nil {
		return consumer.Permanent(fmt.Errorf("%w: %s %s: %w", ErrBackSync, ev.Type, ev.ID, err))
	}
	ev.SchemaVersion, ev.Payload = up.SchemaVersion, up.Payload
	at := ev.OccurredAt.UTC()
	switch ev.Type {
	case domain.EventPlaced:
		err = b.insert(tx, ev)
	case domain.EventPaid:
		err = b.move(tx, ev, id, domain.StatusPaid, "paid_at")
	case domain.EventShipped:
		err = b.move(tx, ev, id, domain.StatusShipped, "shipped_at")
	case domain.EventCancelled:
		err = b.move(tx, ev, id, domain.StatusCancelled, "cancelled_at")
	case domain.EventCustomerEmailChanged:
		var p domain.EmailChanged
		if err := ev.Decode(&p); err != nil {
			return consumer.Permanent(err)
		}
		err = tx.Exec("UPDATE orders SET customer_email = ?, updated_at = ? WHERE id = ?", p.Email, at, id).Error
	default:
		return nil
	}
	if err != nil {
		return err
	}
	b.applied.Add(1)
	return nil
}

func orderIDOf(ev changefeed.Event) (int64, error) {
	var id int64
	if _, err := fmt.Sscan(ev.AggregateID, &id); err != nil || CheckID(id) != nil {
		return 0, malformed(ev, "aggregate id %q is not an order id", ev.AggregateID)
	}
	return id, nil
}

// insert writes a service-placed order and its lines; a redelivery finds
// them there and changes nothing.
func (b *BackSync) insert(tx *gorm.DB, ev changefeed.Event) error {
	var p domain.Placed
	if err := ev.Decode(&p); err != nil {
		return consumer.Permanent(err)
	}
	at := ev.OccurredAt.UTC()
	res := tx.Exec(`INSERT INTO orders (id, customer_id, customer_email, status, currency, total_cents, placed_at, version, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING`,
		p.ID, p.CustomerID, p.CustomerEmail, int(LegacyPlaced), p.Currency, p.TotalCents, p.PlacedAt.UTC(), at)
	if res.Error != nil {
		return fmt.Errorf("back sync order %d: %w", p.ID, res.Error)
	}
	if err := keepLegacyIDsApart(tx, p.ID); err != nil {
		return fmt.Errorf("back sync order %d: %w", p.ID, err)
	}
	for _, l := range p.Lines {
		err := tx.Exec(`INSERT INTO order_lines (order_id, line_no, sku, product_ref, product_name, unit_price_cents, quantity, line_total_cents, warehouse_code)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, line_no) DO NOTHING`,
			p.ID, l.LineNo, l.SKU, l.ProductRef, l.ProductName, l.UnitPriceCents, l.Quantity, l.LineTotalCents, l.Warehouse).Error
		if err != nil {
			return fmt.Errorf("back sync order %d line %d: %w", p.ID, l.LineNo, err)
		}
	}
	return nil
}

// RollbackIDGap is how far past a service order the back sync wrote the
// monolith's next order id starts on SQLite (keepLegacyIDsApart): more
// ids than the service can take ahead of its back sync.
const RollbackIDGap int64 = 1_000_000_000

// keepLegacyIDsApart raises the floor of the monolith's order ids on
// SQLite to RollbackIDGap past id, a service order just written to its
// table. SQLite's AUTOINCREMENT continues after the largest id a table has
// held, the service's once the back sync writes them, so after a rollback
// the monolith would take the ids right after the last order the back sync
// has applied: ids that the service's sagas still in flight (their orders
// not yet placed, or placed and not yet synced back) already hold. With
// the floor, the monolith's orders after a rollback take ids far above
// those, and the forward sync moves the service's counter past them
// (IDs.Observe) for the next flip. A Postgres identity column ignores the
// ids written to it, so the monolith's stay below ServiceIDBase there and
// nothing is needed.
func keepLegacyIDsApart(tx *gorm.DB, id int64) error {
	if db.DialectOf(tx) != db.SQLite || !IsServiceID(id) {
		return nil
	}
	floor := min(id+RollbackIDGap, MaxID-RollbackIDGap)
	if err := tx.Exec("UPDATE sqlite_sequence SET seq = ? WHERE name = 'orders' AND seq < ?", floor, floor).Error; err != nil {
		return fmt.Errorf("raise the monolith's order id floor: %w", err)
	}
	return nil
}

// move sets order id's status to `to` and stamps col with the event's
// time, from a status that allows it; an order already in `to` is left
// as it is (the service's event repeats what the table has).
func (b *BackSync) move(tx *gorm.DB, ev changefeed.Event, id int64, to domain.Status, col string) error {
	var p domain.At
	if err := ev.Decode(&p); err != nil {
		return consumer.Permanent(err)
	}
	stamp := p.At.UTC()
	if stamp.IsZero() {
		stamp = ev.OccurredAt.UTC()
	}
	code, err := CodeOf(State(to))
	if err != nil {
		return consumer.Permanent(err)
	}
	var from []int
	for _, s := range domain.From(to) {
		c, err := CodeOf(State(s))
		if err != nil {
			return consumer.Permanent(err)
		}
		from = append(from, int(c))
	}
	// col is one of three constants of Handle, never input.
	res := tx.Exec("UPDATE orders SET status = ?, "+col+" = ?, version = version + 1, updated_at = ? WHERE id = ? AND status IN ?",
		int(code), stamp, ev.OccurredAt.UTC(), id, from)
	if res.Error != nil {
		return fmt.Errorf("back sync order %d to %s: %w", id, to, res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var cur []int
	if err := tx.Raw("SELECT status FROM orders WHERE id = ?", id).Pluck("status", &cur).Error; err != nil {
		return fmt.Errorf("back sync order %d: %w", id, err)
	}
	switch {
	case len(cur) == 0:
		return consumer.Permanent(fmt.Errorf("%w: %s %s: the monolith has no order %d", ErrBackSync, ev.Type, ev.ID, id))
	case cur[0] == int(code):
		return nil
	}
	return consumer.Permanent(fmt.Errorf("%w: %s %s: order %d has status %d there", ErrBackSync, ev.Type, ev.ID, id, cur[0]))
}
