package orders

import (
	"context"

	"github.com/stranglerkit/strangler/monolith/orders/internal/domain"
)

// API is the orders module as other parts of the shop may use it. No module
// depends on orders today; the API is what one would get.
//
// Invalid input gives an *httpx.Problem (400 or 422) naming every bad field.
// An unknown customer, an unknown SKU or a product that is not for sale is a
// 422 problem that also matches ErrUnknownCustomer, ErrUnknownSKU or
// ErrInactiveProduct.
type API interface {
	// List returns a page of orders, newest first.
	List(ctx context.Context, q Query) (Page, error)
	// Get returns one order with its lines, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, id int64) (Order, error)
	// Place checks the customer and prices the lines from the catalog,
	// then reserves their stock and writes the order in one transaction.
	// Too little stock for a line gives ErrOutOfStock and leaves nothing
	// reserved.
	Place(ctx context.Context, o NewOrder) (Order, error)
	// Pay moves a placed order to paid (ErrTransition otherwise).
	Pay(ctx context.Context, id int64) (Order, error)
	// Ship moves a paid order to shipped and ships its reserved stock.
	Ship(ctx context.Context, id int64) (Order, error)
	// Cancel moves a placed or paid order to cancelled and releases its
	// reserved stock.
	Cancel(ctx context.Context, id int64) (Order, error)
}

// The contract types, defined in the module's internal domain package and
// documented there and in docs/api/shop.openapi.yaml.
type (
	// Order is an order with its lines.
	Order = domain.Order
	// Line is one line of an order.
	Line = domain.Line
	// NewOrder is the input of Place.
	NewOrder = domain.NewOrder
	// NewLine is one line of a NewOrder.
	NewLine = domain.NewLine
	// Status is the legacy integer status code.
	Status = domain.Status
	// Query filters and pages List.
	Query = domain.Query
	// Page is one page of List.
	Page = domain.Page
)

// The statuses: 10 placed, 20 paid, 30 shipped, 90 cancelled.
const (
	StatusPlaced    = domain.StatusPlaced
	StatusPaid      = domain.StatusPaid
	StatusShipped   = domain.StatusShipped
	StatusCancelled = domain.StatusCancelled
)

// The errors callers branch on, with errors.Is.
var (
	ErrNotFound        = domain.ErrNotFound
	ErrUnknownCustomer = domain.ErrUnknownCustomer
	ErrUnknownSKU      = domain.ErrUnknownSKU
	ErrInactiveProduct = domain.ErrInactiveProduct
	ErrOutOfStock      = domain.ErrOutOfStock
	ErrTransition      = domain.ErrTransition
)
