package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
)

// Mapper translates legacy product references to SKUs and back, from the
// pairs the ACL learned from product events (acl_product_refs in the
// service's database). A pair never changes once learned (the catalog
// does not let a SKU change), so pairs read outside a transaction are
// cached.
type Mapper struct {
	db    *gorm.DB
	bySKU sync.Map // sku -> ref
	byRef sync.Map // ref -> sku
}

// NewMapper returns a mapper on the service's database.
func NewMapper(gdb *gorm.DB) *Mapper { return &Mapper{db: gdb} }

// SKU returns the SKU of a legacy reference; ok is false when the ACL has
// not learned it.
func (m *Mapper) SKU(ctx context.Context, ref string) (string, bool, error) {
	if v, ok := m.byRef.Load(ref); ok {
		return v.(string), true, nil
	}
	var skus []string
	if err := db.Conn(ctx, m.db).Table("acl_product_refs").Where("legacy_ref = ?", ref).Pluck("sku", &skus).Error; err != nil {
		return "", false, fmt.Errorf("map %s to a SKU: %w", ref, err)
	}
	if len(skus) == 0 {
		return "", false, nil
	}
	m.remember(ctx, ref, skus[0])
	return skus[0], true, nil
}

// Ref returns the legacy reference of a SKU; ok is false when the ACL has
// not learned it.
func (m *Mapper) Ref(ctx context.Context, sku string) (string, bool, error) {
	if v, ok := m.bySKU.Load(sku); ok {
		return v.(string), true, nil
	}
	var refs []string
	if err := db.Conn(ctx, m.db).Table("acl_product_refs").Where("sku = ?", sku).Pluck("legacy_ref", &refs).Error; err != nil {
		return "", false, fmt.Errorf("map %s to a product reference: %w", sku, err)
	}
	if len(refs) == 0 {
		return "", false, nil
	}
	m.remember(ctx, refs[0], sku)
	return refs[0], true, nil
}

// remember caches a pair read from committed data only: a pair read inside
// a transaction may still roll back.
func (m *Mapper) remember(ctx context.Context, ref, sku string) {
	if db.InTx(ctx) {
		return
	}
	m.byRef.Store(ref, sku)
	m.bySKU.Store(sku, ref)
}

// Learn records a pair in the transaction ctx carries.
func (m *Mapper) Learn(ctx context.Context, ref, sku string) error {
	err := db.Conn(ctx, m.db).Exec(`INSERT INTO acl_product_refs (legacy_ref, sku) VALUES (?, ?)
ON CONFLICT (legacy_ref) DO UPDATE SET sku = excluded.sku`, ref, sku).Error
	if err != nil {
		return fmt.Errorf("learn %s = %s: %w", ref, sku, err)
	}
	return nil
}

// ForwardConsumer is the consumer group of the forward sync.
const ForwardConsumer = "inventory-service"

// ForwardConfig is the forward sync's consumer config: the monolith's stock
// and product topics, skipping events whose origin is the service (they
// started there; loop prevention).
func ForwardConfig(topicPrefix string) consumer.Config {
	return consumer.Config{
		Name:          ForwardConsumer,
		Topics:        []string{changefeed.Topic(topicPrefix, StockAggregate), changefeed.Topic(topicPrefix, ProductAggregate)},
		IgnoreOrigins: []string{domain.Origin},
	}
}

// Forward applies the monolith's change events to the inventory service:
// product events teach it the reference ↔ SKU pairs (and the service the
// SKUs it may stock), stock events change its items. It runs as a
// changefeed consumer on the service's database, so each event's effect
// and its inbox row commit together (exactly once in effect).
//
// # Deltas, state and the ownership flip
//
// A change event (stock.adjusted, reserved, released, shipped) is applied
// as the movement it carries, a delta, when the service has the item, and
// as the level it carries, state, when the service sees the item for the
// first time. A snapshot (stock.snapshot, from a backfill) is applied as
// state. Before the flip the monolith is the only writer and both give the
// same result; deltas matter in the flip window. The flip is meant to be
// done as fence, drain, own: the proxy and the orders module stop sending
// writes to the monolith, the forward sync catches up (consumer lag 0),
// then SetOwner(true). Should a monolith write still commit just before the
// flip and arrive after the service has taken writes, its delta commutes
// with the service's own changes, so neither is lost. The one thing deltas
// cannot merge is both sides selling the same last units: such an event
// would leave reserved above on hand, so it is refused (dead-lettered, with
// the level left as the service has it) and the next verify shows the
// difference. Snapshots are ignored while the service owns the inventory:
// a backfill after the flip would overwrite newer state.
//
// Stock events of a reference whose product event has not arrived yet
// (topics are not ordered with each other) are parked in acl_parked and
// applied, in arrival order, when the pair is learned.
type Forward struct {
	svc  *service.Service
	maps *Mapper
	log  *slog.Logger

	applied, parked, ignored atomic.Int64
}

// NewForward returns the forward sync into svc.
func NewForward(svc *service.Service, maps *Mapper, log *slog.Logger) *Forward {
	if log == nil {
		log = slog.Default()
	}
	return &Forward{svc: svc, maps: maps, log: log}
}

// Register adds the forward sync's handlers to c.
func (f *Forward) Register(c *consumer.Consumer) {
	for _, t := range []string{StockAdjusted, StockReserved, StockReleased, StockShipped, StockSnapshot} {
		c.Handle(t, 1, f.HandleStock)
	}
	for _, t := range []string{ProductCreated, ProductChanged, ProductSnapshot} {
		c.Handle(t, 1, f.HandleProduct)
	}
}

// Stats counts the stock events applied, parked for a missing product
// pair, and ignored (snapshots while the service is the owner).
func (f *Forward) Stats() (applied, parked, ignored int64) {
	return f.applied.Load(), f.parked.Load(), f.ignored.Load()
}

// Metrics exports the counts of Stats as
// strangler_acl_inventory_forward_stock_events_total by outcome, for the
// service's /metrics: a growing "parked" count is a product mapping that
// never arrives.
func (f *Forward) Metrics() []prometheus.Collector {
	counter := func(outcome string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "strangler_acl_inventory_forward_stock_events_total",
			Help:        "Stock events the forward sync handled, by outcome: applied, parked (waiting for the product's SKU) or ignored (snapshots while the service owns the inventory).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{counter("applied", &f.applied), counter("parked", &f.parked), counter("ignored", &f.ignored)}
}

// HandleStock applies one stock event.
func (f *Forward) HandleStock(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	if ev.Origin == domain.Origin {
		return nil
	}
	sc, err := DecodeStock(ev)
	if err != nil {
		return consumer.Permanent(err)
	}
	sku, ok, err := f.maps.SKU(ctx, sc.ProductRef)
	if err != nil {
		return err
	}
	if !ok {
		raw, err := json.Marshal(ev)
		if err != nil {
			return consumer.Permanent(fmt.Errorf("park %s: %w", ev.ID, err))
		}
		if err := tx.Exec("INSERT INTO acl_parked (legacy_ref, event) VALUES (?, ?)", sc.ProductRef, string(raw)).Error; err != nil {
			return fmt.Errorf("park %s of %s: %w", ev.Type, sc.ProductRef, err)
		}
		f.parked.Add(1)
		return nil
	}
	return f.apply(ctx, ev, sc, sku)
}

func (f *Forward) apply(ctx context.Context, ev changefeed.Event, sc StockChange, sku string) error {
	wh, ok := WarehouseID(sc.Warehouse)
	if !ok {
		return consumer.Permanent(fmt.Errorf("%w: %s %s: the ACL has no warehouse for code %s", ErrMalformed, ev.Type, ev.ID, sc.Warehouse))
	}
	state := domain.Item{SKU: sku, Warehouse: wh, OnHand: sc.OnHand, Reserved: sc.Reserved, Version: max(sc.Version, 1), UpdatedAt: sc.UpdatedAt}
	if sc.Movement == nil {
		if f.svc.Owner() {
			f.ignored.Add(1)
			f.log.Warn("snapshot ignored: the service owns the inventory", "event", ev.ID, "key", ev.AggregateID)
			return nil
		}
		if _, err := f.svc.ApplyState(ctx, state, LegacyOrigin); err != nil {
			return err
		}
		f.applied.Add(1)
		return nil
	}
	m := domain.Movement{Kind: sc.Movement.Kind, Quantity: sc.Movement.Quantity, Reference: sc.Movement.Reference}
	if _, err := f.svc.Apply(ctx, m, state, LegacyOrigin); err != nil {
		if errors.Is(err, service.ErrConflict) {
			return consumer.Permanent(err)
		}
		return err
	}
	f.applied.Add(1)
	return nil
}

// HandleProduct learns a product's pair and applies the stock events
// parked for it.
func (f *Forward) HandleProduct(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	pc, err := DecodeProduct(ev)
	if err != nil {
		return consumer.Permanent(err)
	}
	if err := f.maps.Learn(ctx, pc.ProductRef, pc.SKU); err != nil {
		return err
	}
	if err := f.svc.LearnProduct(ctx, pc.SKU, pc.Active); err != nil {
		return err
	}
	var rows []struct {
		Seq   int64  `gorm:"column:seq"`
		Event string `gorm:"column:event"`
	}
	if err := tx.Raw("SELECT seq, event FROM acl_parked WHERE legacy_ref = ? ORDER BY seq", pc.ProductRef).Scan(&rows).Error; err != nil {
		return fmt.Errorf("parked events of %s: %w", pc.ProductRef, err)
	}
	for _, r := range rows {
		var pe changefeed.Event
		if err := json.Unmarshal([]byte(r.Event), &pe); err != nil {
			return consumer.Permanent(fmt.Errorf("parked event %d: %w", r.Seq, err))
		}
		sc, err := DecodeStock(pe)
		if err != nil {
			return consumer.Permanent(err)
		}
		if err := f.apply(ctx, pe, sc, pc.SKU); err != nil {
			return fmt.Errorf("parked %s %s: %w", pe.Type, pe.ID, err)
		}
	}
	if len(rows) > 0 {
		if err := tx.Exec("DELETE FROM acl_parked WHERE legacy_ref = ?", pc.ProductRef).Error; err != nil {
			return fmt.Errorf("unpark %s: %w", pc.ProductRef, err)
		}
		f.parked.Add(-int64(len(rows)))
	}
	return nil
}

// BackSyncConsumer is the consumer group of the back sync.
const BackSyncConsumer = "monolith-inventory-acl"

// BackSyncConfig is the back sync's consumer config: the service's topic,
// skipping events whose origin is the monolith (changes the service took
// over from the monolith; loop prevention).
func BackSyncConfig(topicPrefix string) consumer.Config {
	return consumer.Config{
		Name:          BackSyncConsumer,
		Topics:        []string{changefeed.Topic(topicPrefix, domain.AggregateType)},
		IgnoreOrigins: []string{LegacyOrigin},
	}
}

// BackSync applies the inventory service's own changes to the monolith's
// legacy tables after the ownership flip, so that the modules still in the
// monolith (orders, reports reading qty_available) see them. It runs as a
// changefeed consumer on the monolith's database and writes inv_stock and
// the inv_movements journal with SQL, as the monolith's store does:
// movements as deltas, qty_available kept in step, version counted up. It
// writes nothing into the monolith's outbox, so no event comes back to the
// service; and it applies only events whose origin is the service.
type BackSync struct {
	db  *gorm.DB
	now func() time.Time
}

// NewBackSync returns the back sync into the monolith's database.
func NewBackSync(monolithDB *gorm.DB) *BackSync { return &BackSync{db: monolithDB, now: time.Now} }

// Register adds the back sync's handlers to c.
func (b *BackSync) Register(c *consumer.Consumer) {
	for _, k := range []string{domain.KindAdjust, domain.KindReserve, domain.KindRelease, domain.KindShip} {
		c.Handle(domain.EventType(k), 1, b.Handle)
	}
}

// Handle applies one service event to the monolith's tables.
func (b *BackSync) Handle(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	if ev.Origin != domain.Origin {
		return nil
	}
	var p domain.ItemEvent
	if err := ev.Decode(&p); err != nil {
		return consumer.Permanent(err)
	}
	if p.Movement == nil {
		return consumer.Permanent(fmt.Errorf("%w: %s %s has no movement", ErrMalformed, ev.Type, ev.ID))
	}
	ref, err := b.legacyRef(tx, p.SKU)
	if err != nil {
		return err
	}
	code, ok := WarehouseCode(p.Warehouse)
	if !ok {
		return consumer.Permanent(fmt.Errorf("%w: %s %s: no legacy code for warehouse %s", ErrMalformed, ev.Type, ev.ID, p.Warehouse))
	}
	dOnHand, dReserved, err := p.Movement.Delta()
	if err != nil {
		return consumer.Permanent(err)
	}
	at := p.UpdatedAt
	if at.IsZero() {
		at = b.now()
	}
	at = at.UTC()
	var affected int64
	if p.Movement.Kind == domain.KindAdjust && dOnHand > 0 {
		res := tx.Exec(`INSERT INTO inv_stock (product_ref, warehouse_code, on_hand, reserved, qty_available, version, updated_at)
VALUES (?, ?, ?, 0, ?, 1, ?)
ON CONFLICT (product_ref, warehouse_code) DO UPDATE SET
    on_hand = inv_stock.on_hand + excluded.on_hand,
    qty_available = inv_stock.qty_available + excluded.on_hand,
    version = inv_stock.version + 1,
    updated_at = excluded.updated_at`, ref, code, dOnHand, dOnHand, at)
		if res.Error != nil {
			return fmt.Errorf("back sync %s to %s/%s: %w", ev.Type, ref, code, res.Error)
		}
		affected = res.RowsAffected
	} else {
		res := tx.Exec(`UPDATE inv_stock SET on_hand = on_hand + ?, reserved = reserved + ?, qty_available = qty_available + ?,
    version = version + 1, updated_at = ?
WHERE product_ref = ? AND warehouse_code = ? AND reserved + ? >= 0 AND reserved + ? <= on_hand + ?`,
			dOnHand, dReserved, dOnHand-dReserved, at, ref, code, dReserved, dReserved, dOnHand)
		if res.Error != nil {
			return fmt.Errorf("back sync %s to %s/%s: %w", ev.Type, ref, code, res.Error)
		}
		affected = res.RowsAffected
	}
	if affected == 0 {
		return consumer.Permanent(fmt.Errorf("back sync %s %s: %s %d of %s in %s conflicts with the monolith's level", ev.Type, ev.ID, p.Movement.Kind, p.Movement.Quantity, ref, code))
	}
	if err := tx.Exec(`INSERT INTO inv_movements (product_ref, warehouse_code, kind, quantity, reference, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		ref, code, p.Movement.Kind, p.Movement.Quantity, p.Movement.Reference, at).Error; err != nil {
		return fmt.Errorf("back sync %s: journal: %w", ev.Type, err)
	}
	return nil
}

// legacyRef finds a SKU's product reference in the monolith's catalog
// table: the reference is derived from the product's id.
func (b *BackSync) legacyRef(tx *gorm.DB, sku string) (string, error) {
	var ids []int64
	if err := tx.Raw("SELECT id FROM catalog_products WHERE sku = ?", sku).Scan(&ids).Error; err != nil {
		return "", fmt.Errorf("back sync: find %s in the catalog: %w", sku, err)
	}
	if len(ids) == 0 {
		return "", consumer.Permanent(fmt.Errorf("back sync: the monolith's catalog has no SKU %s", sku))
	}
	return ProductRef(ids[0]), nil
}
