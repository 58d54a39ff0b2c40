package control

import (
	"sort"
	"time"
)

// The traffic inventory counts, per route and per path template the
// proxy derived from the requests it served (see proxy/discover), which
// side answered with which status class, the methods, and when it was last
// seen. Each proxy replica adds its deltas to the store (Store.AddUsage),
// so that the counts of every replica add up and survive restarts.

// UsageClasses is the number of status classes a Usage counts: index 0 is
// a request that got no answer from a backend, 1 to 5 are 1xx to 5xx.
const UsageClasses = 6

// UsageClassNames name the status classes by index.
var UsageClassNames = [UsageClasses]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// MaxUsageTemplates is how many templates a store keeps per route; the
// requests of further templates count in the route's OtherTemplate row,
// so that random paths cannot grow the store without bound.
const MaxUsageTemplates = 1000

// OtherTemplate is the template of the requests that went over a cap of
// templates, in the data plane or in the store. It is not a path pattern.
const OtherTemplate = "(other)"

// UsageMethods are the methods a Usage records, by bit: Methods has bit i
// set when UsageMethods[i] was seen. Other methods are counted, not named.
var UsageMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// UsageKey names a row of the inventory.
type UsageKey struct {
	Module   string `json:"module"`
	Route    string `json:"route"`
	Template string `json:"template"`
}

// Usage is a row of the inventory, or a delta to add to one.
type Usage struct {
	UsageKey
	// Legacy and Candidate count the requests each side answered, by
	// status class.
	Legacy    [UsageClasses]int64 `json:"legacy"`
	Candidate [UsageClasses]int64 `json:"candidate"`
	// Methods has a bit per method of UsageMethods seen.
	Methods uint32 `json:"methods"`
	// LastSeen is the last request; LastLegacy the last one legacy
	// answered. Zero when there was none.
	LastSeen   time.Time `json:"last_seen"`
	LastLegacy time.Time `json:"last_legacy"`
}

// Add adds the counts of d to u, joins the methods and keeps the later
// times.
func (u *Usage) Add(d Usage) {
	for i := range u.Legacy {
		u.Legacy[i] += d.Legacy[i]
		u.Candidate[i] += d.Candidate[i]
	}
	u.Methods |= d.Methods
	if d.LastSeen.After(u.LastSeen) {
		u.LastSeen = d.LastSeen
	}
	if d.LastLegacy.After(u.LastLegacy) {
		u.LastLegacy = d.LastLegacy
	}
}

// UsageTable is an inventory in memory, bounded as a store bounds it: the
// embedded store keeps one, and a shared store's contract is to behave
// like it.
type UsageTable struct {
	rows      map[UsageKey]*Usage
	templates map[[2]string]int // (module, route) → templates other than OtherTemplate
}

// NewUsageTable returns a table holding rows.
func NewUsageTable(rows []Usage) *UsageTable {
	t := &UsageTable{rows: map[UsageKey]*Usage{}, templates: map[[2]string]int{}}
	for _, r := range rows {
		t.Add(r)
	}
	return t
}

// Add adds d to its row, or to its route's OtherTemplate row when the
// route has MaxUsageTemplates templates already.
func (t *UsageTable) Add(d Usage) {
	route := [2]string{d.Module, d.Route}
	if _, ok := t.rows[d.UsageKey]; !ok && d.Template != OtherTemplate {
		if t.templates[route] >= MaxUsageTemplates {
			d.Template = OtherTemplate
		} else {
			t.templates[route]++
		}
	}
	r := t.rows[d.UsageKey]
	if r == nil {
		r = &Usage{UsageKey: d.UsageKey}
		t.rows[d.UsageKey] = r
	}
	r.Add(d)
}

// Rows lists the rows sorted by module, route and template.
func (t *UsageTable) Rows() []Usage {
	out := make([]Usage, 0, len(t.rows))
	for _, r := range t.rows {
		out = append(out, *r)
	}
	SortUsage(out)
	return out
}

// SortUsage sorts rows by module, route and template.
func SortUsage(rows []Usage) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i].UsageKey, rows[j].UsageKey
		if a.Module != b.Module {
			return a.Module < b.Module
		}
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		return a.Template < b.Template
	})
}

// MethodNames lists the methods of a Usage's Methods bits, in
// UsageMethods order.
func MethodNames(bits uint32) []string {
	out := []string{}
	for i, m := range UsageMethods {
		if bits&(1<<i) != 0 {
			out = append(out, m)
		}
	}
	return out
}

// Requests is the sum of the counts of u.
func (u *Usage) Requests() int64 {
	var n int64
	for i := range u.Legacy {
		n += u.Legacy[i] + u.Candidate[i]
	}
	return n
}
