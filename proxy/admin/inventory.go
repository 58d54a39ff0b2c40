package admin

import (
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/discover"
)

// readUsage is the traffic inventory of every replica, or none when the
// proxy gave no way to read it.
func (p *server) readUsage(c echo.Context) ([]control.Usage, error) {
	if p.usage == nil {
		return nil, nil
	}
	rows, err := p.usage(c.Request().Context())
	if err != nil {
		return nil, p.storeProblem(err, "the traffic inventory could not be read from the control store")
	}
	return rows, nil
}

// getInventory answers the traffic inventory: every route of the serving
// table with its counts, and the routes that left it; with unused_for, only
// the serving routes that legacy served nothing of for that long, which
// can be retired.
func (p *server) getInventory(c echo.Context) error {
	q := httpx.NewQuery(c, "unused_for", "module")
	unused, module := q.Duration("unused_for"), q.String("module")
	if err := q.Err(); err != nil {
		return err
	}
	rows, err := p.readUsage(c)
	if err != nil {
		return err
	}
	out := api.Inventory{Routes: []api.InventoryRoute{}}
	var since time.Time
	if unused > 0 {
		since = time.Now().Add(-unused).UTC()
		out.UnusedFor, out.Since = q.String("unused_for"), &since
	}
	for _, r := range inventoryRoutes(p.data.Modules(), rows, module) {
		if unused > 0 {
			r.Retirable = r.LastLegacy == nil || r.LastLegacy.Before(since)
			if !r.InTable || !r.Retirable {
				continue
			}
		}
		out.Routes = append(out.Routes, r)
	}
	return c.JSON(http.StatusOK, out)
}

// inventoryRoutes joins the serving table's routes with the inventory's
// rows, of one module if module is set, sorted by module and route.
func inventoryRoutes(mods []api.Module, rows []control.Usage, module string) []api.InventoryRoute {
	type acc struct {
		route api.InventoryRoute
		total control.Usage
	}
	byKey := map[[2]string]*acc{}
	get := func(mod, route string) *acc {
		k := [2]string{mod, route}
		a := byKey[k]
		if a == nil {
			a = &acc{route: api.InventoryRoute{Module: mod, Route: route, Templates: []api.InventoryTemplate{}}}
			byKey[k] = a
		}
		return a
	}
	for _, m := range mods {
		if module != "" && m.Name != module {
			continue
		}
		for _, r := range m.Routes {
			a := get(m.Name, r.ID)
			a.route.InTable, a.route.Mode = true, r.Mode
		}
	}
	for _, u := range rows {
		if module != "" && u.Module != module {
			continue
		}
		a := get(u.Module, u.Route)
		a.total.Add(u)
		a.route.Templates = append(a.route.Templates, api.InventoryTemplate{Template: u.Template, Methods: control.MethodNames(u.Methods), Counts: countsOf(u)})
	}
	out := make([]api.InventoryRoute, 0, len(byKey))
	for _, a := range byKey {
		a.route.Counts = countsOf(a.total)
		sort.Slice(a.route.Templates, func(i, j int) bool { return a.route.Templates[i].Template < a.route.Templates[j].Template })
		out = append(out, a.route)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Module != out[j].Module {
			return out[i].Module < out[j].Module
		}
		return out[i].Route < out[j].Route
	})
	return out
}

// countsOf is a row's counts as the API shows them.
func countsOf(u control.Usage) api.Counts {
	c := api.Counts{Classes: map[string]int64{}}
	for i, name := range control.UsageClassNames {
		if n := u.Legacy[i] + u.Candidate[i]; n > 0 {
			c.Classes[name] = n
		}
		c.Legacy += u.Legacy[i]
		c.Candidate += u.Candidate[i]
	}
	c.Requests = c.Legacy + c.Candidate
	if c.Requests > 0 {
		c.LegacyShare = float64(c.Legacy) / float64(c.Requests)
	}
	if !u.LastSeen.IsZero() {
		t := u.LastSeen
		c.LastSeen = &t
	}
	if !u.LastLegacy.IsZero() {
		t := u.LastLegacy
		c.LastLegacy = &t
	}
	return c
}

// getDiscover proposes modules and routes from the templates of the
// traffic seen (of one module's routes with module), merged as
// discover.Merge does.
func (p *server) getDiscover(c echo.Context) error {
	q := httpx.NewQuery(c, "module", "threshold", "min_count")
	module, threshold, minCount := q.String("module"), q.Int("threshold"), q.Int64("min_count")
	if threshold < 0 || minCount < 0 {
		return httpx.BadRequest("threshold and min_count must not be negative")
	}
	if err := q.Err(); err != nil {
		return err
	}
	rows, err := p.readUsage(c)
	if err != nil {
		return err
	}
	var samples []discover.Sample
	for _, u := range rows {
		if u.Template == control.OtherTemplate || module != "" && u.Module != module {
			continue
		}
		samples = append(samples, discover.Sample{Template: u.Template, Count: u.Requests(), Methods: control.MethodNames(u.Methods)})
	}
	merged := discover.Merge(samples, discover.Options{Threshold: threshold, MinCount: minCount})
	return c.JSON(http.StatusOK, api.Discovery{Modules: discover.Group(merged)})
}
