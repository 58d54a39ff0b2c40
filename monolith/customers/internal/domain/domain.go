// Package domain holds the customers module's contract types, errors and
// input rules. The module's api.go re-exports the public part.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stranglerkit/strangler/httpx"
)

// Customer is a customer as the module's API returns it.
type Customer struct {
	ID int64 `json:"id"`
	// Email is unique, stored trimmed and in lower case.
	Email   string  `json:"email"`
	Name    string  `json:"name"`
	Address Address `json:"address"`
	// Version counts the customer's changes, starting at 1.
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Address is a postal address.
type Address struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	// Country is the ISO 3166-1 alpha-2 code, in upper case.
	Country string `json:"country"`
}

// NewCustomer is the input of Create.
type NewCustomer struct {
	Email   string   `json:"email"`
	Name    string   `json:"name"`
	Address *Address `json:"address"`
}

// Patch is the input of Update: nil fields stay as they are; an address
// replaces the whole address.
type Patch struct {
	Email   *string  `json:"email"`
	Name    *string  `json:"name"`
	Address *Address `json:"address"`
}

// Query filters and pages List.
type Query struct {
	// Email matches one email exactly (case-insensitive).
	Email string
	// Q matches a case-insensitive substring of the name.
	Q string
	// Limit is the page size: 0 means 20, at most 100.
	Limit int
	// Cursor is the next_cursor of the previous page, or "" for the first.
	Cursor string
}

// Page is one page of customers, in id order.
type Page struct {
	Items      []Customer `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// The module's errors that callers branch on.
var (
	ErrNotFound       = errors.New("no such customer")
	ErrDuplicateEmail = errors.New("email already in use")
)

// Limits on input, also stated in the OpenAPI document.
const (
	MaxEmailLen   = 254
	MaxNameLen    = 200
	MaxAddressLen = 200
	MaxQueryLen   = 100
)

// NormalizeEmail puts an email in its stored form.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Validate checks a new customer and normalises it.
func (c *NewCustomer) Validate() error {
	var v httpx.Validator
	c.Email = NormalizeEmail(c.Email)
	c.Name = strings.TrimSpace(c.Name)
	checkEmail(&v, c.Email)
	checkName(&v, c.Name)
	if c.Address == nil {
		v.Add("address", "is required")
	} else {
		checkAddress(&v, c.Address)
	}
	return v.Err()
}

// Validate checks a patch and normalises it.
func (p *Patch) Validate() error {
	var v httpx.Validator
	if p.Email == nil && p.Name == nil && p.Address == nil {
		v.Add("", "give at least one of email, name, address")
	}
	if p.Email != nil {
		s := NormalizeEmail(*p.Email)
		p.Email = &s
		checkEmail(&v, s)
	}
	if p.Name != nil {
		s := strings.TrimSpace(*p.Name)
		p.Name = &s
		checkName(&v, s)
	}
	if p.Address != nil {
		checkAddress(&v, p.Address)
	}
	return v.Err()
}

// Validate checks a list query's filters; a bad one is a 400.
func (q *Query) Validate() error {
	q.Email = NormalizeEmail(q.Email)
	if utf8.RuneCountInString(q.Q) > MaxQueryLen {
		return httpx.BadRequest("q must be at most %d characters", MaxQueryLen)
	}
	return nil
}

func checkEmail(v *httpx.Validator, email string) {
	switch {
	case email == "":
		v.Add("email", "is required")
	case len(email) > MaxEmailLen:
		v.Add("email", fmt.Sprintf("must be at most %d characters", MaxEmailLen))
	default:
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
			v.Add("email", fmt.Sprintf("%q is not an email address such as ada@example.com", email))
		}
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

func checkAddress(v *httpx.Validator, a *Address) {
	a.Line1 = strings.TrimSpace(a.Line1)
	a.Line2 = strings.TrimSpace(a.Line2)
	a.PostalCode = strings.TrimSpace(a.PostalCode)
	a.City = strings.TrimSpace(a.City)
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	required := []struct{ field, val string }{
		{"address.line1", a.Line1}, {"address.postal_code", a.PostalCode}, {"address.city", a.City},
	}
	for _, f := range required {
		v.Check(f.val != "", f.field, "is required")
	}
	for _, f := range append(required, struct{ field, val string }{"address.line2", a.Line2}) {
		v.Check(utf8.RuneCountInString(f.val) <= MaxAddressLen, f.field, fmt.Sprintf("must be at most %d characters", MaxAddressLen))
	}
	ok := len(a.Country) == 2 && a.Country[0] >= 'A' && a.Country[0] <= 'Z' && a.Country[1] >= 'A' && a.Country[1] <= 'Z'
	v.Check(ok, "address.country", fmt.Sprintf("must be an ISO 3166-1 alpha-2 code such as NL, not %q", a.Country))
}
