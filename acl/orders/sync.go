package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
)

// Migrations is the ACL's set in the orders service's database: the read
// models acl_customers and acl_prices and the order id counter
// acl_order_ids, with its own version table schema_migrations_orders_acl.
func Migrations() db.Migrations {
	return db.Migrations{Name: "orders_acl", FS: migrations.FS("orders-acl")}
}

// ReadModelConsumer is the consumer group of the read models' feed.
const ReadModelConsumer = "orders-service-readmodels"

// ReadModelConfig is the read models' consumer config: the monolith's
// customer and product topics.
func ReadModelConfig(topicPrefix string) consumer.Config {
	return consumer.Config{
		Name:   ReadModelConsumer,
		Topics: []string{changefeed.Topic(topicPrefix, CustomerAggregate), changefeed.Topic(topicPrefix, ProductAggregate)},
	}
}

// Customer is a customer as the orders service's read model keeps it.
type Customer struct {
	ID      int64          `gorm:"column:customer_id;primaryKey"`
	Email   string         `gorm:"column:email"`
	Status  CustomerStatus `gorm:"column:status"`
	Version int            `gorm:"column:version"`
	// UpdatedAt is when the monolith changed the customer.
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

// TableName is the read model's table.
func (Customer) TableName() string { return "acl_customers" }

// Price is a SKU's catalog price as the orders service's read model keeps
// it.
type Price struct {
	SKU        string    `gorm:"column:sku;primaryKey"`
	ProductRef string    `gorm:"column:product_ref"`
	PriceCents int64     `gorm:"column:price_cents"`
	Currency   string    `gorm:"column:currency"`
	Active     bool      `gorm:"column:active"`
	Version    int       `gorm:"column:version"`
	UpdatedAt  time.Time `gorm:"column:updated_at"`
}

// TableName is the read model's table.
func (Price) TableName() string { return "acl_prices" }

// ReadModels keeps the orders service's local copies of the monolith's
// customers and catalog prices, so that the service places orders
// without a synchronous call to the monolith. It applies the monolith's
// customer and product events as a changefeed consumer on the service's
// database: each event's effect and its inbox row commit together. An
// event older than the row (a lower version) changes nothing; an event
// without a version is applied.
type ReadModels struct {
	db *gorm.DB
	// OnEmailChange, if set, runs in the event's transaction when a
	// customer event changes the customer's e-mail in the read model, with
	// the command that updates the e-mail on the customer's orders: the
	// orders service appends it to its orders there. An error rolls the
	// event back, to be retried.
	OnEmailChange func(ctx context.Context, tx *gorm.DB, cmd UpdateCustomerEmail) error
}

// NewReadModels returns the read models on the service's database.
func NewReadModels(gdb *gorm.DB) *ReadModels { return &ReadModels{db: gdb} }

// Register adds the read models' handlers to c.
func (r *ReadModels) Register(c *consumer.Consumer) {
	for _, t := range []string{CustomerCreated, CustomerChanged, CustomerDeleted, CustomerSnapshot} {
		c.Handle(t, 1, r.HandleCustomer)
	}
	for _, t := range []string{ProductCreated, ProductChanged, ProductSnapshot} {
		c.Handle(t, 1, r.HandlePrice)
	}
}

// HandleCustomer applies one customer event.
func (r *ReadModels) HandleCustomer(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	c, err := DecodeCustomer(ev)
	if err != nil {
		return consumer.Permanent(err)
	}
	var had []Customer
	if err := tx.Where("customer_id = ?", c.ID).Limit(1).Find(&had).Error; err != nil {
		return fmt.Errorf("read customer %d: %w", c.ID, err)
	}
	if c.Status == DeletedCustomer {
		err := tx.Exec(`INSERT INTO acl_customers (customer_id, email, status, version, updated_at) VALUES (?, '', 'deleted', 0, ?)
ON CONFLICT (customer_id) DO UPDATE SET status = 'deleted', updated_at = excluded.updated_at`, c.ID, c.At).Error
		if err != nil {
			return fmt.Errorf("delete customer %d: %w", c.ID, err)
		}
		return nil
	}
	res := tx.Exec(`INSERT INTO acl_customers (customer_id, email, status, version, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (customer_id) DO UPDATE SET email = excluded.email, status = excluded.status, version = excluded.version, updated_at = excluded.updated_at
WHERE excluded.version = 0 OR excluded.version > acl_customers.version`, c.ID, c.Email, c.Status, c.Version, c.At)
	if res.Error != nil {
		return fmt.Errorf("store customer %d: %w", c.ID, res.Error)
	}
	changed := res.RowsAffected > 0 && (len(had) == 0 || had[0].Email != c.Email)
	if !changed || r.OnEmailChange == nil {
		return nil
	}
	cmd, ok, err := EmailCommand(ev)
	if err != nil || !ok {
		return consumer.Permanent(err)
	}
	return r.OnEmailChange(ctx, tx, cmd)
}

// HandlePrice applies one product event. An event without a price, such
// as the inventory sync's product snapshot on the same topic, is skipped
// (a tolerant reader ignores what it does not need); one whose price
// cannot be read fails permanently, to the dead-letter topic.
func (r *ReadModels) HandlePrice(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	p, err := DecodePrice(ev)
	if errors.Is(err, ErrNoPrice) {
		return nil
	}
	if err != nil {
		return consumer.Permanent(err)
	}
	return StorePrice(tx, p)
}

// StorePrice keeps a decoded price in the read model, unless the model
// holds a later version of it.
func StorePrice(tx *gorm.DB, p PriceChange) error {
	err := tx.Exec(`INSERT INTO acl_prices (sku, product_ref, price_cents, currency, active, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sku) DO UPDATE SET product_ref = excluded.product_ref, price_cents = excluded.price_cents, currency = excluded.currency,
    active = excluded.active, version = excluded.version, updated_at = excluded.updated_at
WHERE excluded.version = 0 OR excluded.version > acl_prices.version`, p.SKU, p.ProductRef, p.PriceCents, p.Currency, p.Active, p.Version, p.At).Error
	if err != nil {
		return fmt.Errorf("store price of %s: %w", p.SKU, err)
	}
	return nil
}

// Customer returns a customer from the read model; ok is false when the
// service has not heard of them.
func (r *ReadModels) Customer(ctx context.Context, id int64) (c Customer, ok bool, err error) {
	err = db.Conn(ctx, r.db).Where("customer_id = ?", id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Customer{}, false, nil
	}
	if err != nil {
		return Customer{}, false, fmt.Errorf("read customer %d: %w", id, err)
	}
	return c, true, nil
}

// Price returns a SKU's price from the read model; ok is false when the
// service has not heard of the SKU.
func (r *ReadModels) Price(ctx context.Context, sku string) (p Price, ok bool, err error) {
	err = db.Conn(ctx, r.db).Where("sku = ?", sku).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Price{}, false, nil
	}
	if err != nil {
		return Price{}, false, fmt.Errorf("read price of %s: %w", sku, err)
	}
	return p, true, nil
}
