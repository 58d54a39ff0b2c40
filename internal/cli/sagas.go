package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/saga"
)

// EnvSagasURL names the service whose saga admin API `strangler sagas`
// talks to, when --service is not given.
const EnvSagasURL = "STRANGLER_SAGAS_URL"

func init() { register(newSagasCmd) }

// sagasOpts are the flags every sagas subcommand shares.
type sagasOpts struct {
	routesOpts
	service string
}

func newSagasCmd(a *App) *cobra.Command {
	o := &sagasOpts{}
	cmd := &cobra.Command{
		Use:   "sagas",
		Short: "Inspect the sagas of a service and take stuck ones out of manual",
		Long: `Inspect the sagas that a service's orchestrator runs, and act on the ones a
failing compensation parked in the manual state:

  strangler sagas list [--state manual]    sagas, newest first, a page at a time
  strangler sagas show ID                  one saga with its log
  strangler sagas retry ID                 resume a manual saga's compensation
  strangler sagas abort ID --reason TEXT   give up on a manual saga (its
                                           uncompensated steps are left for you)

The service comes from --service or $` + EnvSagasURL + `: the base URL of its admin
API, such as http://127.0.0.1:9103/v1. The token from --token,
$STRANGLER_ADMIN_TOKEN, proxy.admin_token, or the proxy's token file under
the data dir, as for 'strangler routes'.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.service, "service", "", "base URL of the service's admin API (default $"+EnvSagasURL+")")
	o.addFlags(pf)

	var (
		state  string
		limit  int
		before int64
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List sagas, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" && !saga.State(state).Valid() {
				return usageError{fmt.Errorf("--state must be one of %s, not %q", saga.StateNames(), state)}
			}
			if limit < 0 || limit > saga.MaxPage {
				return usageError{fmt.Errorf("--limit must be between 1 and %d, not %d", saga.MaxPage, limit)}
			}
			return a.withSagas(cmd, o, func(ctx context.Context, c *saga.Client) error {
				p, err := c.List(ctx, saga.Filter{State: saga.State(state), Limit: limit, Before: before})
				if err != nil {
					return err
				}
				return a.emit(&o.routesOpts, p, func(w io.Writer, _ any) { printSagas(w, p) })
			})
		},
	}
	list.Flags().StringVar(&state, "state", "", "only sagas in this state: "+saga.StateNames())
	list.Flags().IntVar(&limit, "limit", 0, "page size (default 50)")
	list.Flags().Int64Var(&before, "before", 0, "the page before this seq (as the previous page's next)")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a saga with its log",
		Args:  exactSagaID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withSagas(cmd, o, func(ctx context.Context, c *saga.Client) error {
				s, err := c.Get(ctx, args[0])
				if err != nil {
					return err
				}
				return a.emit(&o.routesOpts, s, func(w io.Writer, _ any) { printSaga(w, s) })
			})
		},
	}

	operate := func(use, short string, op func(c *saga.Client, ctx context.Context, id, reason string) (*saga.Saga, error)) *cobra.Command {
		var reason string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactSagaID,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withSagas(cmd, o, func(ctx context.Context, c *saga.Client) error {
					s, err := op(c, ctx, args[0], reason)
					if err != nil {
						return err
					}
					return a.emit(&o.routesOpts, s, func(w io.Writer, _ any) {
						fmt.Fprintf(w, "%s: %s\n", s.ID, s.State)
					})
				})
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why, for the saga log")
		return c
	}
	retry := operate("retry ID", "Resume the compensation of a manual saga", (*saga.Client).Retry)
	abort := operate("abort ID", "Give up on a manual saga, leaving its uncompensated steps as they are", (*saga.Client).Abort)
	cmd.AddCommand(list, show, retry, abort)
	return cmd
}

func exactSagaID(_ *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return usageError{errors.New("want exactly one saga id")}
	}
	return nil
}

// withSagas resolves the service and the token and runs f with a client.
func (a *App) withSagas(cmd *cobra.Command, o *sagasOpts, f func(ctx context.Context, c *saga.Client) error) error {
	if err := o.checkOutput(); err != nil {
		return err
	}
	service := o.service
	if service == "" {
		service = os.Getenv(EnvSagasURL)
	}
	if service == "" {
		return usageError{fmt.Errorf("no saga service: pass --service URL or set $%s", EnvSagasURL)}
	}
	cfg, err := a.Config(cmd)
	if err != nil {
		return err
	}
	token, err := adminToken(cfg, o.token)
	if err != nil {
		return err
	}
	c, err := saga.NewClient(service, token)
	if err != nil {
		return usageError{err}
	}
	return callAPI(cmd.Context(), "the saga service at "+service+" (is it running?)", func(ctx context.Context) error { return f(ctx, c) })
}

func printSagas(w io.Writer, p *saga.Page) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSAGA\tSTATE\tSTEP\tUPDATED\tERROR")
	for _, s := range p.Sagas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Name, s.State, s.StepIndex, s.UpdatedAt.Format(time.RFC3339), s.Error)
	}
	_ = tw.Flush()
	if p.Next != 0 {
		fmt.Fprintf(w, "more: --before %d\n", p.Next)
	}
}

func printSaga(w io.Writer, s *saga.Saga) {
	fmt.Fprintf(w, "id       %s\nsaga     %s\nstate    %s\nstep     %d\ndata     %s\n", s.ID, s.Name, s.State, s.StepIndex, s.Data)
	if s.Error != "" {
		fmt.Fprintf(w, "error    %s\n", s.Error)
	}
	fmt.Fprintf(w, "created  %s\nupdated  %s\n\n", s.CreatedAt.Format(time.RFC3339), s.UpdatedAt.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tAT\tSTEP\tEVENT\tATTEMPT\tERROR")
	for _, e := range s.Log {
		ev := string(e.Event)
		if e.Event == saga.EventState {
			ev = "→ " + string(e.State)
		}
		attempt := ""
		if e.Attempt > 0 {
			attempt = fmt.Sprint(e.Attempt)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.N, e.At.Format(time.RFC3339), e.Step, ev, attempt, e.Error)
	}
	_ = tw.Flush()
}
