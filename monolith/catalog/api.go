package catalog

import (
	"context"

	"github.com/stranglerkit/strangler/monolith/catalog/internal/domain"
)

// API is the catalog as other modules may use it. It is the only way in:
// other modules never read catalog_products.
//
// Invalid input gives an *httpx.Problem (400 or 422) naming every bad field.
type API interface {
	// List returns a page of products, in id order.
	List(ctx context.Context, q Query) (Page, error)
	// Get returns one product, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id int64) (Product, error)
	// BySKU returns the products with the given SKUs, keyed by their
	// normalised SKU (see NormalizeSKU); unknown SKUs are absent.
	BySKU(ctx context.Context, skus []string) (map[string]Product, error)
	// Create adds a product; a taken SKU gives ErrDuplicateSKU.
	Create(ctx context.Context, p NewProduct) (Product, error)
	// Update changes a product's fields other than its SKU.
	Update(ctx context.Context, id int64, p Patch) (Product, error)
}

// The contract types. They are defined in the module's internal domain
// package, which its implementation shares; the fields are documented there
// and in docs/api/shop.openapi.yaml.
type (
	// Product is a product as the catalog returns it.
	Product = domain.Product
	// NewProduct is the input of Create.
	NewProduct = domain.NewProduct
	// Patch is the input of Update; nil fields stay as they are.
	Patch = domain.Patch
	// Query filters and pages List.
	Query = domain.Query
	// Page is one page of List.
	Page = domain.Page
)

// The errors callers branch on, with errors.Is.
var (
	// ErrNotFound: no product has the id.
	ErrNotFound = domain.ErrNotFound
	// ErrDuplicateSKU: another product has the SKU.
	ErrDuplicateSKU = domain.ErrDuplicateSKU
)

// NormalizeSKU puts a SKU in its stored form: trimmed, in upper case.
func NormalizeSKU(s string) string { return domain.NormalizeSKU(s) }

// ProductRef returns the legacy product reference of product id,
// "P-000042" for 42, by which inventory keys its stock.
func ProductRef(id int64) string { return domain.ProductRef(id) }

// ParseProductRef returns the product id of a legacy reference in the
// canonical form ProductRef produces.
func ParseProductRef(ref string) (int64, error) { return domain.ParseProductRef(ref) }
