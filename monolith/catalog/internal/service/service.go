// Package service implements the catalog's API: it validates input, runs
// every change in one transaction, and maps rows to the contract types.
package service

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog/internal/domain"
	"github.com/stranglerkit/strangler/monolith/catalog/internal/store"
	"github.com/stranglerkit/strangler/monolith/internal/errs"
	"github.com/stranglerkit/strangler/monolith/internal/events"
	"github.com/stranglerkit/strangler/monolith/internal/page"
)

// listName tags the catalog's cursors.
const listName = "catalog.products"

// Service is the catalog's implementation.
type Service struct {
	db     *gorm.DB
	store  *store.Store
	events *events.Emitter
	now    func() time.Time
}

// New returns the service on gdb; now stamps changes.
func New(gdb *gorm.DB, now func() time.Time) *Service {
	return &Service{db: gdb, store: store.New(gdb), events: events.New("catalog"), now: now}
}

type cursor struct {
	ID int64 `json:"id"`
}

// List returns a page of products.
func (s *Service) List(ctx context.Context, q domain.Query) (domain.Page, error) {
	if err := q.Validate(); err != nil {
		return domain.Page{}, err
	}
	limit, err := page.Limit(q.Limit)
	if err != nil {
		return domain.Page{}, err
	}
	var after cursor
	if q.Cursor != "" {
		if err := page.Decode(listName, q.Cursor, &after); err != nil {
			return domain.Page{}, err
		}
	}
	f := store.Filter{NameContains: q.Q, SKU: q.SKU, Currency: q.Currency, Active: q.Active}
	rows, err := s.store.List(ctx, f, after.ID, limit+1)
	if err != nil {
		return domain.Page{}, err
	}
	out := domain.Page{Items: make([]domain.Product, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			out.NextCursor = page.Encode(listName, cursor{ID: rows[i-1].ID})
			break
		}
		out.Items = append(out.Items, toProduct(r))
	}
	return out, nil
}

// Get returns product id.
func (s *Service) Get(ctx context.Context, id int64) (domain.Product, error) {
	r, ok, err := s.store.Get(ctx, id)
	if err != nil {
		return domain.Product{}, err
	}
	if !ok {
		return domain.Product{}, errs.New(domain.ErrNotFound, "no product has id %d", id)
	}
	return toProduct(r), nil
}

// BySKU returns the products with the given SKUs, keyed by normalised SKU.
// Unknown SKUs are absent from the map.
func (s *Service) BySKU(ctx context.Context, skus []string) (map[string]domain.Product, error) {
	norm := make([]string, 0, len(skus))
	seen := make(map[string]bool, len(skus))
	for _, sku := range skus {
		n := domain.NormalizeSKU(sku)
		if !seen[n] {
			seen[n] = true
			norm = append(norm, n)
		}
	}
	rows, err := s.store.BySKU(ctx, norm)
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.Product, len(rows))
	for _, r := range rows {
		out[r.SKU] = toProduct(r)
	}
	return out, nil
}

// Create adds a product.
func (s *Service) Create(ctx context.Context, in domain.NewProduct) (domain.Product, error) {
	if err := in.Validate(); err != nil {
		return domain.Product{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	r := store.Row{
		SKU: in.SKU, Name: in.Name, Description: in.Description,
		PriceCents: in.PriceCents, Currency: in.Currency,
		Active: in.Active == nil || *in.Active, Version: 1,
		CreatedAt: now, UpdatedAt: now,
	}
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		if err := s.store.Insert(ctx, &r); err != nil {
			if db.IsUniqueViolation(err) {
				return errs.New(domain.ErrDuplicateSKU, "another product has the SKU %s", in.SKU)
			}
			return fmt.Errorf("create product %s: %w", in.SKU, err)
		}
		p := toProduct(r)
		return s.events.Emit(ctx, "product", p.Ref, "product.created", p)
	})
	if err != nil {
		return domain.Product{}, err
	}
	return toProduct(r), nil
}

// Update changes product id.
func (s *Service) Update(ctx context.Context, id int64, p domain.Patch) (domain.Product, error) {
	if err := p.Validate(); err != nil {
		return domain.Product{}, err
	}
	var out domain.Product
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		ch := store.Changes{Name: p.Name, Description: p.Description, PriceCents: p.PriceCents, Currency: p.Currency, Active: p.Active}
		r, ok, err := s.store.Update(ctx, id, ch, s.now().UTC().Truncate(time.Microsecond))
		if err != nil {
			return err
		}
		if !ok {
			return errs.New(domain.ErrNotFound, "no product has id %d", id)
		}
		if p.SKU != nil && *p.SKU != r.SKU {
			// Rolls the update back.
			return httpx.Invalid(httpx.FieldError{Field: "sku", Message: fmt.Sprintf("cannot change from %s; a product keeps its SKU for life", r.SKU)})
		}
		out = toProduct(r)
		return s.events.Emit(ctx, "product", out.Ref, "product.changed", out)
	})
	return out, err
}

// Count returns how many products there are.
func (s *Service) Count(ctx context.Context) (int64, error) { return s.store.Count(ctx) }

func toProduct(r store.Row) domain.Product {
	return domain.Product{
		ID: r.ID, Ref: domain.ProductRef(r.ID), SKU: r.SKU, Name: r.Name, Description: r.Description,
		PriceCents: r.PriceCents, Currency: r.Currency, Active: r.Active, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}
