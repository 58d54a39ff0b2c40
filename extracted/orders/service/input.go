package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gorm.io/gorm"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/httpx"
)

// NewOrder is the body of POST /api/orders, as the monolith's.
type NewOrder struct {
	CustomerID int64     `json:"customer_id"`
	Lines      []NewLine `json:"lines"`
}

// NewLine is one line of a NewOrder.
type NewLine struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// check applies the monolith's rules to a new order, with its messages,
// and puts the SKUs in the catalog's stored form (upper case).
func (o *NewOrder) check() []httpx.FieldError {
	var errs []httpx.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, httpx.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if o.CustomerID <= 0 {
		add("customer_id", "must be a positive customer id")
	}
	switch n := len(o.Lines); {
	case n == 0:
		add("lines", "must hold at least one line")
	case n > domain.MaxLines:
		add("lines", "must hold at most %d lines, not %d", domain.MaxLines, n)
	}
	first := map[string]int{}
	for i := range o.Lines {
		l := &o.Lines[i]
		l.SKU = strings.ToUpper(strings.TrimSpace(l.SKU))
		field := "lines[" + strconv.Itoa(i) + "]"
		if l.SKU == "" {
			add(field+".sku", "is required")
		} else if j, dup := first[l.SKU]; dup {
			add(field+".sku", "repeats lines[%d]; order %s once with the total quantity", j, l.SKU)
		} else {
			first[l.SKU] = i
		}
		if l.Quantity < 1 || l.Quantity > domain.MaxQuantity {
			add(field+".quantity", "must be between 1 and %d, not %d", domain.MaxQuantity, l.Quantity)
		}
	}
	return errs
}

// RegisterReadModels adds the read models' handlers to c: the ACL's
// customers and prices, and with each product event the product's name
// (product_names), which the price read model does not keep.
func (s *Service) RegisterReadModels(c *consumer.Consumer) {
	s.rm.Register(c)
	for _, t := range []string{aclorders.ProductCreated, aclorders.ProductChanged, aclorders.ProductSnapshot} {
		c.Handle(t, 1, s.HandleProduct)
	}
}

// HandleProduct applies one product event to the price read model and to
// product_names.
func (s *Service) HandleProduct(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	p, err := aclorders.DecodePrice(ev)
	if errors.Is(err, aclorders.ErrNoPrice) {
		// Another reader's product event, such as the inventory
		// backfill's snapshot on the same topic, as the ACL's HandlePrice
		// skips it.
		return nil
	}
	if err != nil {
		return consumer.Permanent(err)
	}
	if err := aclorders.StorePrice(tx, p); err != nil {
		return err
	}
	var named struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(ev.Payload, &named); err != nil || named.Name == "" {
		return nil
	}
	err = tx.Exec(`INSERT INTO product_names (sku, name, version) VALUES (?, ?, ?)
ON CONFLICT (sku) DO UPDATE SET name = excluded.name, version = excluded.version
WHERE excluded.version = 0 OR excluded.version > product_names.version`, p.SKU, named.Name, p.Version).Error
	if err != nil {
		return fmt.Errorf("store name of %s: %w", p.SKU, err)
	}
	return nil
}
