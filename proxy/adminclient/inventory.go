package adminclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/stranglerkit/strangler/proxy/api"
)

// Inventory reads the traffic inventory, of one module if module is set.
// With unusedFor (such as "30d"), only the serving routes that legacy
// served nothing of for that long, which can be retired.
func (c *Client) Inventory(ctx context.Context, module, unusedFor string) (*api.Inventory, error) {
	q := url.Values{}
	if module != "" {
		q.Set("module", module)
	}
	if unusedFor != "" {
		q.Set("unused_for", unusedFor)
	}
	var out api.Inventory
	return &out, c.do(ctx, http.MethodGet, "/v1/inventory", q, nil, "", nil, &out)
}

// DiscoverOptions narrow and tune Discover; the zero value takes every
// template with the proxy's defaults.
type DiscoverOptions struct {
	// Module takes the traffic of one module's routes only.
	Module string
	// Threshold is how many distinct values at one position make a
	// {param}; MinCount leaves out rarer templates. Zero: the defaults.
	Threshold int
	MinCount  int64
}

// Discover proposes modules and routes from the traffic the proxy saw.
func (c *Client) Discover(ctx context.Context, o DiscoverOptions) (*api.Discovery, error) {
	q := url.Values{}
	if o.Module != "" {
		q.Set("module", o.Module)
	}
	if o.Threshold > 0 {
		q.Set("threshold", strconv.Itoa(o.Threshold))
	}
	if o.MinCount > 0 {
		q.Set("min_count", strconv.FormatInt(o.MinCount, 10))
	}
	var out api.Discovery
	return &out, c.do(ctx, http.MethodGet, "/v1/discover", q, nil, "", nil, &out)
}
