// Package domain holds the catalog's contract types, its errors and the
// rules its input must follow. The catalog's api.go re-exports the public
// part, so that the implementation can use the types without importing the
// module's root package, which imports the implementation.
package domain

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stranglerkit/strangler/httpx"
)

// Product is a product as the catalog's API returns it.
type Product struct {
	// ID is the catalog's key.
	ID int64 `json:"id"`
	// Ref is the legacy product reference derived from ID, P-000042, by
	// which inventory keys its stock.
	Ref string `json:"product_ref"`
	// SKU is the stock keeping unit, unique, in upper case.
	SKU string `json:"sku"`
	// Name is what customers see.
	Name string `json:"name"`
	// Description is free text; it may be empty.
	Description string `json:"description"`
	// PriceCents is the price in minor units of Currency.
	PriceCents int64 `json:"price_cents"`
	// Currency is the ISO 4217 code of the price.
	Currency string `json:"currency"`
	// Active products can be ordered; inactive ones stay listed for history.
	Active bool `json:"active"`
	// Version counts the product's changes, starting at 1.
	Version int `json:"version"`
	// CreatedAt and UpdatedAt are UTC.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewProduct is the input of Create.
type NewProduct struct {
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	PriceCents  int64  `json:"price_cents"`
	Currency    string `json:"currency"`
	// Active defaults to true.
	Active *bool `json:"active"`
}

// Patch is the input of Update: nil fields stay as they are. The SKU cannot
// change; it is accepted only when it equals the current one, so that a
// client may send back a product it read.
type Patch struct {
	SKU         *string `json:"sku"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	PriceCents  *int64  `json:"price_cents"`
	Currency    *string `json:"currency"`
	Active      *bool   `json:"active"`
}

// Query filters and pages List.
type Query struct {
	// Q matches a case-insensitive substring of the name.
	Q string
	// SKU matches one SKU exactly (case-insensitive).
	SKU string
	// Currency matches the price currency.
	Currency string
	// Active, when set, matches active or inactive products only.
	Active *bool
	// Limit is the page size: 0 means 20, at most 100.
	Limit int
	// Cursor is the next_cursor of the previous page, or "" for the first.
	Cursor string
}

// Page is one page of products, in id order.
type Page struct {
	Items []Product `json:"items"`
	// NextCursor fetches the next page; it is empty on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// The catalog's errors that callers branch on.
var (
	ErrNotFound     = errors.New("product not found")
	ErrDuplicateSKU = errors.New("SKU already exists")
)

// Currencies are the ISO 4217 codes the shop prices in. All have two minor
// units, which is what the _cents fields assume.
var Currencies = []string{"CHF", "CZK", "DKK", "EUR", "GBP", "NOK", "PLN", "SEK", "USD"}

// Limits on input, also stated in the OpenAPI document.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxPriceCents     = 100_000_000_00
	MaxQueryLen       = 100
)

var skuPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{1,31}$`)

// NormalizeSKU puts a SKU in its stored form: trimmed, in upper case.
func NormalizeSKU(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// ProductRef returns the legacy reference of product id: "P-" and the id,
// zero-padded to six digits.
func ProductRef(id int64) string { return fmt.Sprintf("P-%06d", id) }

// ParseProductRef returns the product id of a legacy reference. Only the
// canonical form that ProductRef produces is accepted.
func ParseProductRef(ref string) (int64, error) {
	digits, ok := strings.CutPrefix(ref, "P-")
	if ok && len(digits) >= 6 {
		if id, err := strconv.ParseInt(digits, 10, 64); err == nil && id > 0 && ProductRef(id) == ref {
			return id, nil
		}
	}
	return 0, fmt.Errorf("product reference %q is not of the form P-000042", ref)
}

// Validate checks a new product and normalises its SKU and currency.
func (p *NewProduct) Validate() error {
	var v httpx.Validator
	p.SKU = NormalizeSKU(p.SKU)
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	p.Name = strings.TrimSpace(p.Name)
	checkSKU(&v, p.SKU)
	checkName(&v, p.Name)
	checkDescription(&v, p.Description)
	checkPrice(&v, p.PriceCents)
	checkCurrency(&v, p.Currency)
	return v.Err()
}

// Validate checks a patch and normalises its fields.
func (p *Patch) Validate() error {
	var v httpx.Validator
	if p.SKU == nil && p.Name == nil && p.Description == nil && p.PriceCents == nil && p.Currency == nil && p.Active == nil {
		v.Add("", "give at least one of name, description, price_cents, currency, active")
	}
	if p.SKU != nil {
		s := NormalizeSKU(*p.SKU)
		p.SKU = &s
	}
	if p.Name != nil {
		s := strings.TrimSpace(*p.Name)
		p.Name = &s
		checkName(&v, s)
	}
	if p.Description != nil {
		checkDescription(&v, *p.Description)
	}
	if p.PriceCents != nil {
		checkPrice(&v, *p.PriceCents)
	}
	if p.Currency != nil {
		s := strings.ToUpper(strings.TrimSpace(*p.Currency))
		p.Currency = &s
		checkCurrency(&v, s)
	}
	return v.Err()
}

// Validate checks a list query's filters and normalises them; the limit and
// cursor are checked where they are used. Query parameters are not a body,
// so a bad one is a 400.
func (q *Query) Validate() error {
	q.SKU = NormalizeSKU(q.SKU)
	q.Currency = strings.ToUpper(strings.TrimSpace(q.Currency))
	var errs []string
	if utf8.RuneCountInString(q.Q) > MaxQueryLen {
		errs = append(errs, fmt.Sprintf("q must be at most %d characters", MaxQueryLen))
	}
	if q.Currency != "" && !knownCurrency(q.Currency) {
		errs = append(errs, fmt.Sprintf("currency must be one of %s, not %q", strings.Join(Currencies, ", "), q.Currency))
	}
	if len(errs) > 0 {
		return httpx.BadRequest("%s", strings.Join(errs, "; "))
	}
	return nil
}

func checkSKU(v *httpx.Validator, sku string) {
	switch {
	case sku == "":
		v.Add("sku", "is required")
	case !skuPattern.MatchString(sku):
		v.Add("sku", "must be 2 to 32 letters, digits or dashes, starting with a letter or digit")
	}
}

func checkName(v *httpx.Validator, name string) {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		v.Add("name", "is required")
	case n > MaxNameLen:
		v.Add("name", fmt.Sprintf("must be at most %d characters", MaxNameLen))
	}
}

func checkDescription(v *httpx.Validator, d string) {
	v.Check(utf8.RuneCountInString(d) <= MaxDescriptionLen, "description", fmt.Sprintf("must be at most %d characters", MaxDescriptionLen))
}

func checkPrice(v *httpx.Validator, cents int64) {
	v.Check(cents >= 0 && cents <= MaxPriceCents, "price_cents", fmt.Sprintf("must be between 0 and %d", int64(MaxPriceCents)))
}

func checkCurrency(v *httpx.Validator, c string) {
	v.Check(knownCurrency(c), "currency", fmt.Sprintf("must be one of %s, not %q", strings.Join(Currencies, ", "), c))
}

func knownCurrency(c string) bool {
	for _, known := range Currencies {
		if c == known {
			return true
		}
	}
	return false
}
