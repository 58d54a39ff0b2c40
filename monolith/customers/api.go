package customers

import (
	"context"

	"github.com/stranglerkit/strangler/monolith/customers/internal/domain"
)

// API is the customers module as other modules may use it.
//
// Invalid input gives an *httpx.Problem (400 or 422) naming every bad field.
type API interface {
	// List returns a page of customers, in id order.
	List(ctx context.Context, q Query) (Page, error)
	// Get returns one customer, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id int64) (Customer, error)
	// Create adds a customer; a taken email gives ErrDuplicateEmail.
	Create(ctx context.Context, c NewCustomer) (Customer, error)
	// Update changes a customer.
	Update(ctx context.Context, id int64, p Patch) (Customer, error)
	// Delete removes a customer.
	Delete(ctx context.Context, id int64) error
}

// The contract types, defined in the module's internal domain package and
// documented there and in docs/api/shop.openapi.yaml.
type (
	// Customer is a customer as the module returns it.
	Customer = domain.Customer
	// Address is a postal address.
	Address = domain.Address
	// NewCustomer is the input of Create.
	NewCustomer = domain.NewCustomer
	// Patch is the input of Update.
	Patch = domain.Patch
	// Query filters and pages List.
	Query = domain.Query
	// Page is one page of List.
	Page = domain.Page
)

// The errors callers branch on, with errors.Is.
var (
	// ErrNotFound: no customer has the id.
	ErrNotFound = domain.ErrNotFound
	// ErrDuplicateEmail: another customer has the email.
	ErrDuplicateEmail = domain.ErrDuplicateEmail
)

// NormalizeEmail puts an email in its stored form: trimmed, in lower case.
func NormalizeEmail(s string) string { return domain.NormalizeEmail(s) }
