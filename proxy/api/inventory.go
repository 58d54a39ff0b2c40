package api

import (
	"time"

	"github.com/stranglerkit/strangler/proxy/discover"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Inventory is the traffic inventory: what reached each route, and which
// side served it, counted by every replica since the store began.
type Inventory struct {
	// UnusedFor is the filter's period, as asked (such as "30d"); empty
	// when every route is listed.
	UnusedFor string `json:"unused_for,omitempty"`
	// Since is now minus UnusedFor: the routes listed had no legacy
	// traffic after it. Nil when every route is listed.
	Since *time.Time `json:"since,omitempty"`
	// Routes are sorted by module and route: the serving table's routes,
	// seen or not, and the routes that left the table with their counts.
	Routes []InventoryRoute `json:"routes"`
}

// Counts are the requests each side answered, by status class ("error"
// for no answer, "1xx" to "5xx").
type Counts struct {
	Requests  int64            `json:"requests"`
	Legacy    int64            `json:"legacy"`
	Candidate int64            `json:"candidate"`
	Classes   map[string]int64 `json:"classes"`
	// LegacyShare is Legacy over Requests, 0 when there were none.
	LegacyShare float64 `json:"legacy_share"`
	// LastSeen is the last request, LastLegacy the last one legacy
	// answered; nil when there was none.
	LastSeen   *time.Time `json:"last_seen,omitempty"`
	LastLegacy *time.Time `json:"last_legacy,omitempty"`
}

// InventoryRoute is one route's counts and its templates'.
type InventoryRoute struct {
	Module string `json:"module"`
	Route  string `json:"route"`
	// InTable says that the route is in the serving table; Mode is then
	// its mode.
	InTable bool        `json:"in_table"`
	Mode    routes.Mode `json:"mode,omitempty"`
	Counts
	// Retirable says that legacy served none of the route's requests
	// since Inventory.Since: its legacy code path can go. Only set with
	// a period.
	Retirable bool                `json:"retirable"`
	Templates []InventoryTemplate `json:"templates"`
}

// InventoryTemplate is one path template's counts. The template
// "(other)" holds the requests over the cap of templates a route keeps.
type InventoryTemplate struct {
	Template string   `json:"template"`
	Methods  []string `json:"methods"`
	Counts
}

// Discovery proposes modules and routes from the path templates of the
// traffic seen, for a routes file: see proxy/discover.
type Discovery struct {
	Modules []discover.Module `json:"modules"`
}
