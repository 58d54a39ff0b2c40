package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/discover"
)

// newDiscoverCmd is `strangler routes discover`: modules and path
// templates proposed from the traffic the proxy saw, as a routes-file
// fragment.
func newDiscoverCmd(a *App, o *routesOpts) *cobra.Command {
	var opt adminclient.DiscoverOptions
	cmd := &cobra.Command{
		Use:   "discover [--module M] [--threshold N] [--min-count N] [-o yaml|json]",
		Short: "Propose modules and path templates from the traffic the proxy has seen",
		Long: `Propose modules and routes for an app with no spec, from the path templates of
the traffic every proxy replica counted: segments that look like values
(integers, UUIDs, hashes, dates, slugs) and positions with more distinct
values than --threshold become {param}s, as in /api/articles/{slug}.

The default output (-o yaml) is a routes-file fragment, one legacy module
per first path segment (after "api" and versions), to paste under the
modules of your routes file and give candidates; -o json lists the modules
with each template's requests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			yaml := o.output == "yaml" || o.output == "table"
			co := *o
			if yaml {
				co.output = "table"
			}
			return a.withAdmin(cmd, &co, func(ctx context.Context, c *adminclient.Client) error {
				d, err := c.Discover(ctx, opt)
				if err != nil {
					return err
				}
				if !yaml {
					return a.emit(&co, d, nil)
				}
				return printFragment(a.Stdout, d)
			})
		},
	}
	cmd.Flags().StringVar(&opt.Module, "module", "", "only the traffic of this module's routes (such as the catch-all default)")
	cmd.Flags().IntVar(&opt.Threshold, "threshold", 0, fmt.Sprintf("distinct values at one position that make a {param} (default %d)", discover.DefaultThreshold))
	cmd.Flags().Int64Var(&opt.MinCount, "min-count", 0, "leave out templates with fewer requests")
	return cmd
}

// printFragment writes the routes-file fragment of d in the layout of the
// routes files that init writes and the edit commands keep (two-space
// indent, a route a line), so that its modules paste under theirs.
func printFragment(w io.Writer, d *api.Discovery) error {
	if len(d.Modules) == 0 {
		_, err := fmt.Fprintln(w, "# no traffic seen yet: send some through the proxy and run discover again")
		return err
	}
	b, err := renderTable(discover.Fragment(d.Modules), "Proposed by `strangler routes discover` from the traffic seen: paste the\nmodules below into your routes file, then give each a candidate.", nil)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
