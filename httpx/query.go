package httpx

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Query reads a request's query string strictly. Unknown and repeated
// parameters are errors, so that a misspelt filter (?actve=false) fails
// loudly instead of returning an unfiltered list. Errors collect, and Err
// reports all of them in one 400 problem.
type Query struct {
	vals map[string][]string
	errs []string
}

// NewQuery checks the query string of c against the known parameter names.
// It parses the raw query itself: echo's QueryParams drops a part it cannot
// read (a malformed escape such as %zz, a semicolon) without a word, and
// this reports it. A value holding a NUL character or invalid UTF-8 is an
// error too (a name holding either is unknown).
func NewQuery(c echo.Context, known ...string) *Query {
	vals, err := url.ParseQuery(c.Request().URL.RawQuery)
	q := &Query{vals: vals}
	if err != nil {
		q.errs = append(q.errs, "malformed query string: "+err.Error())
	}
	var unknown []string
	for name, vs := range q.vals {
		if !slices.Contains(known, name) {
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		if len(vs) > 1 {
			q.errs = append(q.errs, strconv.Quote(name)+" is given more than once")
		}
		for _, v := range vs {
			if msg := textProblem(v); msg != "" {
				q.errs = append(q.errs, strconv.Quote(name)+" "+msg)
				break
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		sorted := slices.Clone(known)
		sort.Strings(sorted)
		q.errs = append(q.errs, "unknown query parameter "+strings.Join(unknown, ", ")+" (known: "+strings.Join(sorted, ", ")+")")
	}
	return q
}

// String returns the parameter, or "" when it is absent.
func (q *Query) String(name string) string {
	if vs := q.vals[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Int returns the integer parameter, or 0 when it is absent.
func (q *Query) Int(name string) int {
	s := q.String(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		q.errs = append(q.errs, strconv.Quote(name)+" must be an integer, not "+strconv.Quote(s))
	}
	return n
}

// Int64 returns the integer parameter, or 0 when it is absent.
func (q *Query) Int64(name string) int64 {
	s := q.String(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		q.errs = append(q.errs, strconv.Quote(name)+" must be an integer, not "+strconv.Quote(s))
	}
	return n
}

// Limit returns the page size parameter "limit", or 0 when it is absent. A
// given limit must be between 1 and max.
func (q *Query) Limit(max int) int {
	s := q.String("limit")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		q.errs = append(q.errs, fmt.Sprintf("\"limit\" must be an integer between 1 and %d, not %q", max, s))
		return 0
	}
	return n
}

// Bool returns the boolean parameter ("true" or "false"), or nil when it is
// absent.
func (q *Query) Bool(name string) *bool {
	s := q.String(name)
	switch s {
	case "":
		return nil
	case "true":
		b := true
		return &b
	case "false":
		b := false
		return &b
	}
	q.errs = append(q.errs, strconv.Quote(name)+" must be true or false, not "+strconv.Quote(s))
	return nil
}

// Duration returns the positive duration parameter, a Go duration such as
// "90m" or a number of days such as "30d", or 0 when it is absent.
func (q *Query) Duration(name string) time.Duration {
	s := q.String(name)
	if s == "" {
		return 0
	}
	d, err := ParseDays(s)
	if err != nil || d <= 0 {
		q.errs = append(q.errs, strconv.Quote(name)+" must be a positive duration such as \"30d\" or \"12h\", not "+strconv.Quote(s))
		return 0
	}
	return d
}

// ParseDays parses a Go duration, or a whole number of days written with
// the unit d, such as "30d", which time.ParseDuration does not know.
func ParseDays(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Err returns the 400 problem listing every error, or nil.
func (q *Query) Err() error {
	if len(q.errs) == 0 {
		return nil
	}
	return BadRequest("%s", strings.Join(q.errs, "; "))
}
