// Package service implements the customers module's API.
package service

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/customers/internal/domain"
	"github.com/stranglerkit/strangler/monolith/customers/internal/store"
	"github.com/stranglerkit/strangler/monolith/internal/errs"
	"github.com/stranglerkit/strangler/monolith/internal/events"
	"github.com/stranglerkit/strangler/monolith/internal/page"
)

const listName = "customers"

// Service is the module's implementation.
type Service struct {
	db     *gorm.DB
	store  *store.Store
	events *events.Emitter
	now    func() time.Time
}

// New returns the service on gdb; now stamps changes.
func New(gdb *gorm.DB, now func() time.Time) *Service {
	return &Service{db: gdb, store: store.New(gdb), events: events.New("customers"), now: now}
}

type cursor struct {
	ID int64 `json:"id"`
}

// List returns a page of customers.
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
	rows, err := s.store.List(ctx, q.Email, q.Q, after.ID, limit+1)
	if err != nil {
		return domain.Page{}, err
	}
	out := domain.Page{Items: make([]domain.Customer, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			out.NextCursor = page.Encode(listName, cursor{ID: rows[i-1].ID})
			break
		}
		out.Items = append(out.Items, toCustomer(r))
	}
	return out, nil
}

// Get returns customer id.
func (s *Service) Get(ctx context.Context, id int64) (domain.Customer, error) {
	r, ok, err := s.store.Get(ctx, id)
	if err != nil {
		return domain.Customer{}, err
	}
	if !ok {
		return domain.Customer{}, errs.New(domain.ErrNotFound, "no customer has id %d", id)
	}
	return toCustomer(r), nil
}

// Create adds a customer.
func (s *Service) Create(ctx context.Context, in domain.NewCustomer) (domain.Customer, error) {
	if err := in.Validate(); err != nil {
		return domain.Customer{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	a := in.Address
	r := store.Row{
		Email: in.Email, Name: in.Name,
		AddressLine1: a.Line1, AddressLine2: a.Line2, PostalCode: a.PostalCode, City: a.City, Country: a.Country,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		if err := s.store.Insert(ctx, &r); err != nil {
			if db.IsUniqueViolation(err) {
				return errs.New(domain.ErrDuplicateEmail, "another customer has the email %s", in.Email)
			}
			return fmt.Errorf("create customer: %w", err)
		}
		c := toCustomer(r)
		return s.events.Emit(ctx, "customer", strconv.FormatInt(c.ID, 10), "customer.created", c)
	})
	if err != nil {
		return domain.Customer{}, err
	}
	return toCustomer(r), nil
}

// Update changes customer id.
func (s *Service) Update(ctx context.Context, id int64, p domain.Patch) (domain.Customer, error) {
	if err := p.Validate(); err != nil {
		return domain.Customer{}, err
	}
	set := map[string]string{}
	if p.Email != nil {
		set["email"] = *p.Email
	}
	if p.Name != nil {
		set["name"] = *p.Name
	}
	if a := p.Address; a != nil {
		set["address_line1"], set["address_line2"], set["postal_code"], set["city"], set["country"] = a.Line1, a.Line2, a.PostalCode, a.City, a.Country
	}
	var out domain.Customer
	err := db.Transact(ctx, s.db, func(ctx context.Context) error {
		r, ok, err := s.store.Update(ctx, id, set, s.now().UTC().Truncate(time.Microsecond))
		if err != nil {
			if db.IsUniqueViolation(err) && p.Email != nil {
				return errs.New(domain.ErrDuplicateEmail, "another customer has the email %s", *p.Email)
			}
			return err
		}
		if !ok {
			return errs.New(domain.ErrNotFound, "no customer has id %d", id)
		}
		out = toCustomer(r)
		return s.events.Emit(ctx, "customer", strconv.FormatInt(out.ID, 10), "customer.changed", out)
	})
	return out, err
}

// Delete removes customer id. Orders keep their copy of the customer's
// email, so deleting a customer never breaks order history.
func (s *Service) Delete(ctx context.Context, id int64) error {
	return db.Transact(ctx, s.db, func(ctx context.Context) error {
		_, ok, err := s.store.Delete(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errs.New(domain.ErrNotFound, "no customer has id %d", id)
		}
		return s.events.Emit(ctx, "customer", strconv.FormatInt(id, 10), "customer.deleted", map[string]int64{"id": id})
	})
}

// Count returns how many customers there are.
func (s *Service) Count(ctx context.Context) (int64, error) { return s.store.Count(ctx) }

func toCustomer(r store.Row) domain.Customer {
	return domain.Customer{
		ID: r.ID, Email: r.Email, Name: r.Name,
		Address: domain.Address{Line1: r.AddressLine1, Line2: r.AddressLine2, PostalCode: r.PostalCode, City: r.City, Country: r.Country},
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}
