package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
)

// newInventoryCmd is `strangler routes inventory`: what still reaches the
// monolith, route by route, and which routes can be retired.
func newInventoryCmd(a *App, o *routesOpts) *cobra.Command {
	var unusedFor, module string
	var templates bool
	cmd := &cobra.Command{
		Use:   "inventory [--unused-for 30d] [--module M] [--templates]",
		Short: "Show the traffic each route got, by side and status, and the routes legacy no longer serves",
		Long: `Show the traffic inventory that every proxy replica counts into the control
store: per route (and with --templates per path template) the requests, the
share legacy served, the status classes and when it was last seen.

With --unused-for 30d only the routes of the serving table that legacy
served nothing of for 30 days are listed: their monolith code path can be
retired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if unusedFor != "" {
				if d, err := httpx.ParseDays(unusedFor); err != nil || d <= 0 {
					return usageError{fmt.Errorf("--unused-for must be a positive duration such as 30d or 12h, not %q", unusedFor)}
				}
			}
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				inv, err := c.Inventory(ctx, module, unusedFor)
				if err != nil {
					return err
				}
				return a.emit(o, inv, func(w io.Writer, _ any) { printInventory(w, inv, templates) })
			})
		},
	}
	cmd.Flags().StringVar(&unusedFor, "unused-for", "", "list only the routes legacy served nothing of for this long (30d, 12h)")
	cmd.Flags().StringVar(&module, "module", "", "only this module's routes")
	cmd.Flags().BoolVar(&templates, "templates", false, "list each route's path templates too")
	return cmd
}

func printInventory(w io.Writer, inv *api.Inventory, templates bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tROUTE\tMODE\tREQUESTS\tLEGACY%\t2XX\t3XX\t4XX\t5XX\tERROR\tLAST SEEN\tLAST LEGACY")
	for _, r := range inv.Routes {
		mode := string(r.Mode)
		if !r.InTable {
			mode = "(not in table)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Module, r.Route, mode, countsRow(r.Counts))
		if templates {
			for _, t := range r.Templates {
				fmt.Fprintf(tw, "\t  %s\t%s\t%s\n", t.Template, strings.Join(t.Methods, ","), countsRow(t.Counts))
			}
		}
	}
	_ = tw.Flush()
	if inv.Since == nil {
		return
	}
	if len(inv.Routes) == 0 {
		fmt.Fprintf(w, "every route of the table had legacy traffic in the last %s\n", inv.UnusedFor)
		return
	}
	fmt.Fprintf(w, "%d routes had no legacy traffic in the last %s (since %s): their legacy code path can be retired\n",
		len(inv.Routes), inv.UnusedFor, inv.Since.Format(time.RFC3339))
}

func countsRow(c api.Counts) string {
	legacy := "-"
	if c.Requests > 0 {
		legacy = fmt.Sprintf("%.0f%%", c.LegacyShare*100)
	}
	return fmt.Sprintf("%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s", c.Requests, legacy,
		c.Classes["2xx"], c.Classes["3xx"], c.Classes["4xx"], c.Classes["5xx"], c.Classes["error"], when(c.LastSeen), when(c.LastLegacy))
}

// when is a time for the table, "never" when there is none.
func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
