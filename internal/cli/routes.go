package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// EnvAdminToken carries the admin token to `strangler routes` without
// putting it on the command line.
const EnvAdminToken = "STRANGLER_ADMIN_TOKEN"

func init() { register(newRoutesCmd) }

// routesOpts are the flags every routes subcommand shares.
type routesOpts struct {
	token  string
	output string
}

func newRoutesCmd(a *App) *cobra.Command {
	o := &routesOpts{}
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Inspect and flip the proxy's modules through its admin API",
		Long: `Inspect and change the proxy's route table, module by module:

  strangler routes list                    every module, its mode and shadow results
  strangler routes show orders             one module and its routes
  strangler routes shadow orders           serve from legacy, copy to the candidate
  strangler routes canary orders --weight 10
  strangler routes flip orders             everything to the candidate
  strangler routes rollback orders         everything back to legacy
  strangler routes history [orders]        who changed what, when
  strangler routes diffs orders            shadow mismatches with samples
  strangler routes apply -f routes.yaml    replace the whole table

The admin address comes from --admin, STRANGLER_PROXY_ADMIN_ADDR or the
config (default 127.0.0.1:8081); the token from --token, $STRANGLER_ADMIN_TOKEN,
proxy.admin_token, or the token file under the data dir that the proxy
writes on first start.`,
	}
	a.bindPersistentString(cmd, "admin", "proxy.admin_addr", "admin API address (default 127.0.0.1:8081)")
	pf := cmd.PersistentFlags()
	o.addFlags(pf)

	moduleArg := func(use, short string, run func(ctx context.Context, c *adminclient.Client, module string) (any, error), human func(w io.Writer, v any)) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactModule,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
					v, err := run(ctx, c, args[0])
					if err != nil {
						return err
					}
					return a.emit(o, v, human)
				})
			},
		}
	}
	showModule := func(w io.Writer, v any) { printModule(w, v.(*api.Module)) }
	changed := func(w io.Writer, v any) {
		m := v.(*api.Module)
		fmt.Fprintf(w, "%s: %s (table version %d)\n", m.Name, describeMode(m.Mode, m.Weight), m.Version)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the modules with their mode and shadow results",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				mods, err := c.Modules(ctx)
				if err != nil {
					return err
				}
				// The replicas, for the text only: the JSON stays the
				// modules' list. An older proxy has none to list.
				reps, repErr := c.Replicas(ctx)
				return a.emit(o, mods, func(w io.Writer, _ any) {
					printModules(w, mods)
					printReplicas(w, reps, repErr)
				})
			})
		},
	}
	show := moduleArg("show MODULE", "Show a module, its routes and shadow results",
		func(ctx context.Context, c *adminclient.Client, m string) (any, error) { return c.Module(ctx, m) }, showModule)
	shadow := moduleArg("shadow MODULE", "Serve the module from legacy and shadow it to its candidate",
		func(ctx context.Context, c *adminclient.Client, m string) (any, error) { return c.Shadow(ctx, m) }, changed)
	flip := moduleArg("flip MODULE", "Send the whole module to its candidate, legacy as fallback",
		func(ctx context.Context, c *adminclient.Client, m string) (any, error) { return c.Flip(ctx, m) }, changed)
	rollback := moduleArg("rollback MODULE", "Send the whole module back to legacy",
		func(ctx context.Context, c *adminclient.Client, m string) (any, error) { return c.Rollback(ctx, m) }, changed)
	diffs := moduleArg("diffs MODULE", "Show the module's shadow comparisons and mismatch samples",
		func(ctx context.Context, c *adminclient.Client, m string) (any, error) { return c.Diffs(ctx, m) },
		func(w io.Writer, v any) { printDiffs(w, v.(*api.Diffs)) })

	var weight int
	canary := &cobra.Command{
		Use:   "canary MODULE --weight N",
		Short: "Send N percent of the module's users to its candidate (sticky)",
		Args:  exactModule,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("weight") {
				return usageError{errors.New("canary needs --weight N, the percentage of users (0 to 100) sent to the candidate")}
			}
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				m, err := c.Canary(ctx, args[0], weight)
				if err != nil {
					return err
				}
				return a.emit(o, m, changed)
			})
		},
	}
	canary.Flags().IntVar(&weight, "weight", 0, "percentage of users sent to the candidate, 0 to 100")

	var limit int
	history := &cobra.Command{
		Use:   "history [MODULE]",
		Short: "Show the audit log: who changed what, when, from what to what",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module := ""
			if len(args) == 1 {
				module = args[0]
			}
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				entries, err := c.Audit(ctx, module, limit)
				if err != nil {
					return err
				}
				return a.emit(o, entries, func(w io.Writer, _ any) { printHistory(w, entries) })
			})
		},
	}
	history.Flags().IntVar(&limit, "limit", 20, "how many changes to show, newest first")

	var file string
	var ifVersion int64
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the whole route table with a YAML or JSON file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("apply needs -f FILE")}
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if _, err := routes.Parse(raw); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				t, err := c.ReplaceTableYAML(ctx, raw, ifVersion)
				if err != nil {
					return err
				}
				return a.emit(o, t, func(w io.Writer, _ any) {
					fmt.Fprintf(w, "route table replaced: version %d, %d modules\n", t.Version, len(t.Table.Modules))
				})
			})
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "route table file")
	apply.Flags().Int64Var(&ifVersion, "if-version", 0, "fail if the table is no longer at this version")

	cmd.AddCommand(list, show, shadow, canary, flip, rollback, history, diffs, apply)
	cmd.AddCommand(newRoutesEditCmds(a, o)...)
	cmd.AddCommand(newInventoryCmd(a, o), newDiscoverCmd(a, o))
	return cmd
}

func exactModule(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError{fmt.Errorf("%s needs exactly one MODULE, got %d arguments", cmd.Name(), len(args))}
	}
	return nil
}

// bindPersistentString binds a persistent flag of a command group to a
// config path.
func (a *App) bindPersistentString(cmd *cobra.Command, name, path, usage string) {
	cmd.PersistentFlags().String(name, "", usage)
	a.bound[cmd.PersistentFlags().Lookup(name)] = path
}

// withAdmin resolves the admin address and token and runs f with a client.
func (a *App) withAdmin(cmd *cobra.Command, o *routesOpts, f func(ctx context.Context, c *adminclient.Client) error) error {
	if err := o.checkOutput(); err != nil {
		return err
	}
	cfg, err := a.Config(cmd)
	if err != nil {
		return err
	}
	c, addr, err := newAdminClient(cfg, o)
	if err != nil {
		return err
	}
	return callAPI(cmd.Context(), "the proxy's admin API at "+addr+" (is the proxy running?)", func(ctx context.Context) error { return f(ctx, c) })
}

// newAdminClient is a client of the admin API that cfg and o name, and
// that API's address.
func newAdminClient(cfg *config.Config, o *routesOpts) (*adminclient.Client, string, error) {
	token, err := adminToken(cfg, o.token)
	if err != nil {
		return nil, "", err
	}
	addr := adminAddr(cfg)
	c, err := adminclient.New(addr, token, adminclient.WithActor(actorName()))
	return c, addr, err
}

// addFlags adds the --token and -o flags to pf.
func (o *routesOpts) addFlags(pf *pflag.FlagSet) {
	pf.StringVar(&o.token, "token", "", "admin token (prefer $"+EnvAdminToken+" or the token file)")
	pf.StringVarP(&o.output, "output", "o", "table", "output: table or json")
}

// checkOutput refuses an -o that is neither table nor json.
func (o *routesOpts) checkOutput() error {
	if o.output != "table" && o.output != "json" {
		return usageError{fmt.Errorf("-o must be table or json, not %q", o.output)}
	}
	return nil
}

// callAPI runs f with the CLI's 30 s bound on an API call, and says that the
// API, which peer names, cannot be reached when the connection fails.
func callAPI(ctx context.Context, peer string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return unreachable(peer, f(ctx))
}

// unreachableError is a failed connection to a peer.
type unreachableError struct {
	peer string
	err  error
}

func (e *unreachableError) Error() string { return "cannot reach " + e.peer + ": " + e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// unreachable says that peer cannot be reached if err is a failed
// connection, unless err already names the peer it failed to reach (a
// broker that a command talks to besides the API, say).
func unreachable(peer string, err error) error {
	var ue *unreachableError
	if errors.As(err, &ue) {
		return err
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout()) {
		return &unreachableError{peer: peer, err: err}
	}
	return err
}

// adminToken resolves the admin token: the --token flag's value, else
// $STRANGLER_ADMIN_TOKEN, proxy.admin_token, or the token file the proxy
// writes under the data dir.
func adminToken(cfg *config.Config, flag string) (string, error) {
	token := flag
	if token == "" {
		token = os.Getenv(EnvAdminToken)
	}
	if token == "" {
		token = cfg.Proxy.AdminToken
	}
	if token == "" {
		t, err := proxy.ReadToken(cfg.Proxy.AdminTokenFile)
		if err != nil {
			return "", fmt.Errorf("no admin token: pass --token, set $%s, or run where %s is readable (%v)", EnvAdminToken, cfg.Proxy.AdminTokenFile, unwrapPathError(err))
		}
		token = t
	}
	return token, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// actorName is who the audit log records: $USER@host.
func actorName() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	if host == "" {
		return name
	}
	return name + "@" + host
}

// emit writes v as JSON for -o json, else with human.
func (a *App) emit(o *routesOpts, v any, human func(w io.Writer, v any)) error {
	if o.output == "json" {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(a.Stdout, v)
	return nil
}

func describeMode(mode routes.Mode, weight int) string {
	if mode == routes.ModeCanary {
		return fmt.Sprintf("canary %d%%", weight)
	}
	return string(mode)
}

func shadowSummary(s api.ShadowStats) string {
	if s.Compared == 0 && s.Errors == 0 && s.Dropped == 0 {
		return "-"
	}
	out := fmt.Sprintf("%d compared, %d mismatched (%.1f%%)", s.Compared, s.Mismatches, s.MismatchRate*100)
	if s.Noise > 0 {
		out += fmt.Sprintf(", %d noise", s.Noise)
	}
	if s.Settled > 0 {
		out += fmt.Sprintf(", %d settled on recheck", s.Settled)
	}
	if s.Inconclusive > 0 {
		out += fmt.Sprintf(", %d inconclusive (legacy changed before the recheck)", s.Inconclusive)
	}
	if s.Errors > 0 {
		out += fmt.Sprintf(", %d errors", s.Errors)
	}
	if s.Dropped > 0 {
		out += fmt.Sprintf(", %d dropped", s.Dropped)
	}
	return out
}

func printModules(w io.Writer, mods []api.Module) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tMODE\tLEGACY\tCANDIDATE\tROUTES\tFALLBACKS\tSHADOW")
	for _, m := range mods {
		cand := m.Candidate
		if cand == "" {
			cand = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.Name, describeMode(m.Mode, m.Weight), m.Legacy, cand, len(m.Routes), m.Fallbacks, shadowSummary(m.Shadow))
	}
	_ = tw.Flush()
	if len(mods) > 0 {
		fmt.Fprintf(w, "table version %d\n", mods[0].Version)
	}
}

// printReplicas lists the proxy replicas that share the control store and
// the version each serves, marking those behind the newest.
func printReplicas(w io.Writer, reps []api.Replica, err error) {
	if err != nil {
		fmt.Fprintf(w, "replicas: not listed: %v\n", err)
		return
	}
	if len(reps) == 0 {
		return
	}
	var newest int64
	for _, r := range reps {
		newest = max(newest, r.Version)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tVERSION\tREVISION\tSTATE\tREPORTED")
	for _, r := range reps {
		state := "ok"
		switch {
		case r.Version == 0:
			state = "no table"
		case r.Degraded:
			state = fmt.Sprintf("degraded (store not read for %.0fs)", r.StalenessSeconds)
		case r.Version < newest:
			state = "behind"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.Name, r.Version, r.Revision, state, r.ReportedAt.Format(time.RFC3339))
	}
	_ = tw.Flush()
}

func printModule(w io.Writer, m *api.Module) {
	cand := m.Candidate
	if cand == "" {
		cand = "-"
	}
	fmt.Fprintf(w, "module     %s\nmode       %s\nlegacy     %s\ncandidate  %s\nfallbacks  %d\nshadow     %s\nversion    %d\n",
		m.Name, describeMode(m.Mode, m.Weight), m.Legacy, cand, m.Fallbacks, shadowSummary(m.Shadow), m.Version)
	if m.Override != nil {
		fmt.Fprintf(w, "override   %s (set through the admin API on top of the routes file)\n", describeMode(m.Override.Mode, m.Override.Weight))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tMATCH\tMODE")
	for _, r := range m.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Match, describeMode(r.Mode, r.Weight))
	}
	_ = tw.Flush()
}

func printHistory(w io.Writer, entries []api.AuditEntry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no changes recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tVERSION\tACTOR\tACTION\tMODULE\tCHANGE")
	for _, e := range entries {
		module := e.Module
		if module == "" {
			module = "*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Version, e.Actor, e.Action, module, describeChange(e))
	}
	_ = tw.Flush()
}

// describeChange renders an audit entry's before and after in a line.
func describeChange(e api.AuditEntry) string {
	if e.Action == "phase" {
		var b, a struct {
			Phase  string `json:"phase"`
			Weight int    `json:"weight"`
		}
		if json.Unmarshal(e.Before, &b) == nil && json.Unmarshal(e.After, &a) == nil {
			return "phase " + describeMode(routes.Mode(b.Phase), b.Weight) + " → " + describeMode(routes.Mode(a.Phase), a.Weight)
		}
	}
	var b, a api.ModeOverride
	if e.Module != "" && json.Unmarshal(e.Before, &b) == nil && json.Unmarshal(e.After, &a) == nil && a.Mode != "" {
		return describeMode(b.Mode, b.Weight) + " → " + describeMode(a.Mode, a.Weight)
	}
	var before, after map[string]struct {
		Mode   routes.Mode `json:"mode"`
		Weight int         `json:"weight"`
		Routes []string    `json:"routes"`
	}
	_ = json.Unmarshal(e.Before, &before)
	_ = json.Unmarshal(e.After, &after)
	var parts []string
	for name, am := range after {
		bm, ok := before[name]
		switch {
		case !ok && len(before) > 0:
			parts = append(parts, "+"+name)
		case ok && (bm.Mode != am.Mode || bm.Weight != am.Weight):
			parts = append(parts, name+": "+describeMode(bm.Mode, bm.Weight)+" → "+describeMode(am.Mode, am.Weight))
		case ok && len(bm.Routes) != len(am.Routes):
			parts = append(parts, name+": "+strconv.Itoa(len(bm.Routes))+" → "+strconv.Itoa(len(am.Routes))+" routes")
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			parts = append(parts, "-"+name)
		}
	}
	if len(parts) == 0 {
		if e.Detail != "" {
			return e.Detail
		}
		return "no module changed"
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func printDiffs(w io.Writer, d *api.Diffs) {
	for _, r := range d.Routes {
		summary := shadowSummary(r.Stats)
		if summary == "-" {
			summary = "no shadow copies yet"
		}
		fmt.Fprintf(w, "route %s: %s\n", r.Route, summary)
		if len(r.Noise) > 0 {
			fmt.Fprintf(w, "  noise (differs between legacy answers, ignored): %s\n", strings.Join(r.Noise, ", "))
		}
		for _, s := range r.Samples {
			fmt.Fprintf(w, "  %s %s  legacy %d, candidate %d  (request %s, %s)\n", s.Method, s.URI, s.LegacyStatus, s.CandidateStatus, s.RequestID, s.Time.Local().Format("15:04:05"))
			for _, diff := range s.Differences {
				fmt.Fprintf(w, "    %s\n", diff.String())
			}
		}
	}
}
