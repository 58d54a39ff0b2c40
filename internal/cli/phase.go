package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

func init() {
	register(newPhaseCmd)
	register(newStatusCmd)
}

func newPhaseCmd(a *App) *cobra.Command {
	o := &routesOpts{}
	var (
		weight int
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "phase MODULE PHASE",
		Short: "Move a module's extraction to a phase, forward or back",
		Long: `Move one module's extraction to a phase, by name or number:

  0 legacy   the monolith serves the module
  1 sync     backfill the service's copy; it then follows the monolith's events
  2 shadow   copy reads to the service and compare the answers
  3 canary   serve --weight percent of users' reads from the service
  4 flip     the service owns writes; its events flow back to the monolith
  5 retire   switch the monolith's write path off

Any phase may follow any other: going to a lower phase is the rollback. The
module's plan (phases.modules in the config) names its proxy modules,
backfill jobs and the components that must apply a phase before the proxy
moves traffic for it. When ownership moves to the service (phase 4 or 5
from below 4), the components switch first and the proxy then sends the
writes; when it moves back, the proxy sends the writes back first, and from
retire the monolith's write path comes back (phase 4) before that.

When ownership moves back (from 4 or 5 to below 4) and the plan names the
back sync's consumer group (back_sync_group), the reads stay on the service
until the back sync has applied, to the monolith's tables, every event the
service published by the time the writes went back: the command takes the
end offsets of the back sync's topics and waits, for up to --wait, until the
group has committed them, logging its lag, and only then sends the reads
back and records the phase. If the group does not catch up by then (after a
crash it waits out the dead consumer's session), the writes go back to the
service and nothing changes (--wait 0 checks once).

A move that sends traffic to the service (shadow, canary, flip, retire, from
the same phase or a lower one) first waits, for up to --wait, until every
live proxy replica has a healthy instance of the backends the module's
routes name as candidate, and changes nothing if one has none by then
(--wait 0 checks once). A rollback does not wait for the service.`,
		Example: `  strangler phase inventory sync
  strangler phase inventory canary --weight 50
  strangler phase inventory flip
  strangler phase inventory 3 --weight 100    # roll the flip back, once the back sync caught up`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := phase.Parse(args[1])
			if err != nil {
				return usageError{err}
			}
			if weight < 0 || weight > 100 {
				return usageError{fmt.Errorf("--weight must be 0 to 100, not %d", weight)}
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			plan, ok := cfg.Phases.Find(args[0])
			if !ok {
				return usageError{fmt.Errorf("no module %q in phases.modules", args[0])}
			}
			log := a.Logger(cfg)
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				st, err := movePhase(cmd, cfg, c, plan, target, weight, wait, log)
				if err != nil {
					return err
				}
				return a.emit(o, st, func(w io.Writer, _ any) {
					r := phase.RoutingFor(phase.Phase(st.Phase), st.Weight)
					fmt.Fprintf(w, "%s: phase %d %s: %s\n", plan.Name, st.Phase, st.Name, describeRouting(plan, r))
				})
			})
		},
	}
	a.bindPersistentString(cmd, "admin", "proxy.admin_addr", "admin API address (default 127.0.0.1:8081)")
	f := cmd.Flags()
	f.StringVar(&o.token, "token", "", "admin token (prefer $"+EnvAdminToken+" or the token file)")
	f.StringVarP(&o.output, "output", "o", "table", "output: table or json")
	f.IntVar(&weight, "weight", 0, "canary weight of reads in phase 3, 0-100 (default 10)")
	f.DurationVar(&wait, "wait", 20*time.Second, "how long to wait for every proxy replica to have a healthy instance of the service, for the back sync to catch up on a rollback below the flip, for the components to apply the phase, and for every replica to serve each routing change")
	return cmd
}

func describeRouting(plan phase.Module, r phase.Routing) string {
	reads := describeMode(routes.Mode(r.Reads), r.Weight)
	if plan.WriteRoutes == "" {
		return "reads and writes " + reads
	}
	return fmt.Sprintf("reads %s, writes %s", reads, r.Writes)
}

// movePhase applies target: backfills for phase 1, the phase record that
// components watch, and the proxy's routing, in the order that keeps every
// request served.
func movePhase(cmd *cobra.Command, cfg *config.Config, c *adminclient.Client, plan phase.Module, target phase.Phase, weight int, wait time.Duration, log *slog.Logger) (*api.PhaseState, error) {
	ctx := cmd.Context()
	cur, err := c.Phase(ctx, plan.Name)
	if err != nil {
		return nil, err
	}
	if target == phase.Canary && weight == 0 {
		weight = cur.Weight
	}
	// The weight recorded is the one routed: RoutingFor's default when
	// neither the flag nor the current phase gives one, and 0 outside
	// canary.
	r := phase.RoutingFor(target, weight)
	weight = r.Weight
	if target == phase.Sync && cur.Phase < int(phase.Sync) {
		for _, name := range plan.Backfill {
			j, ok := findJob(cfg, name)
			if !ok {
				return nil, fmt.Errorf("phase sync: no backfill job %q in backfill.jobs", name)
			}
			res, err := runBackfill(cmd, cfg, j, false, log)
			if err != nil {
				return nil, fmt.Errorf("phase sync: backfill %s: %w", name, err)
			}
			log.Info("backfill done", "job", name, "rows", res.Rows, "events", res.Events)
		}
	}
	if target >= phase.Phase(cur.Phase) {
		// A move that sends traffic to the service waits for it before
		// anything changes: a rollback, which takes traffic away, does
		// not.
		if err := awaitCandidates(ctx, c, plan, r, wait, log); err != nil {
			return nil, fmt.Errorf("phase %s of %s: %w", target, plan.Name, err)
		}
	}
	owning := func(p phase.Phase) bool { return p >= phase.Flip }
	record := func() (*api.PhaseState, error) {
		if _, err := c.SetPhase(ctx, plan.Name, int(target), weight); err != nil {
			return nil, err
		}
		return awaitAcks(ctx, c, plan, int(target), wait)
	}
	var st *api.PhaseState
	if phase.Phase(cur.Phase) >= phase.Retire && !owning(target) {
		// Ownership moves back from retire: the monolith's write path
		// comes back first, at flip, while the service still owns the
		// writes and the proxy still sends it them; only then does the
		// proxy send the writes to the monolith, below.
		if _, err := c.SetPhase(ctx, plan.Name, int(phase.Flip), 0); err != nil {
			return nil, err
		}
		if _, err := awaitAcks(ctx, c, plan, int(phase.Flip), wait); err != nil {
			return nil, err
		}
	}
	toService := owning(target) && !owning(phase.Phase(cur.Phase))
	if toService {
		// The service takes writes and the monolith calls it before the
		// proxy sends it any.
		if st, err = record(); err != nil {
			return nil, err
		}
	}
	if owning(phase.Phase(cur.Phase)) && !owning(target) && plan.BackSyncGroup != "" {
		if err := returnOwnership(ctx, cfg, c, plan, r, cur, wait, log); err != nil {
			return nil, fmt.Errorf("phase %s of %s: %w", target, plan.Name, err)
		}
	} else if err := route(ctx, c, plan, r, wait); err != nil {
		return nil, err
	}
	if !toService {
		if st, err = record(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// returnOwnership routes a rollback below the flip for a plan with a back
// sync: the writes go back to the monolith first, while the service still
// serves the reads; then, once the back sync has applied every event the
// service published until then, the reads follow, so that the monolith
// answers none from tables that miss the service's last writes. If the
// back sync does not catch up within wait, the writes go back to the
// service (and a rollback from retire records retire again), so that
// nothing changed. A plan whose writes are routed with its reads cannot
// split them: it waits for the back sync before it routes them together.
func returnOwnership(ctx context.Context, cfg *config.Config, c *adminclient.Client, plan phase.Module, r phase.Routing, cur *api.PhaseState, wait time.Duration, log *slog.Logger) error {
	// undo takes back what moved before the back sync was waited for: the
	// writes, if they moved, and the retire→flip step.
	undo := func(err error, writes bool) error {
		var uerr error
		if writes {
			uerr = setModule(ctx, c, plan.WriteRoutes, string(routes.ModeExtracted), 0, wait)
		}
		if uerr == nil && phase.Phase(cur.Phase) >= phase.Retire {
			if _, uerr = c.SetPhase(ctx, plan.Name, cur.Phase, cur.Weight); uerr == nil {
				_, uerr = awaitAcks(ctx, c, plan, cur.Phase, wait)
			}
		}
		if uerr != nil {
			return fmt.Errorf("%w; undoing the rollback's first steps failed too: %w", err, uerr)
		}
		return fmt.Errorf("%w; nothing was changed, the writes are on the service — check that the back sync runs, then run the command again", err)
	}
	if plan.WriteRoutes == "" {
		if err := awaitBackSync(ctx, cfg, plan, wait, log); err != nil {
			return undo(err, false)
		}
		return route(ctx, c, plan, r, wait)
	}
	if err := setModule(ctx, c, plan.WriteRoutes, r.Writes, 0, wait); err != nil {
		return err
	}
	if err := awaitBackSync(ctx, cfg, plan, wait, log); err != nil {
		return undo(err, true)
	}
	return setModule(ctx, c, plan.ReadRoutes, r.Reads, r.Weight, wait)
}

// awaitBackSync takes the end offsets of the plan's back-sync topics and
// waits, for up to wait, until the back sync's consumer group has
// committed them on every partition: then it has applied every event
// published until now to the monolith's tables. Events published later do
// not hold it. It logs the lag while it waits.
func awaitBackSync(ctx context.Context, cfg *config.Config, plan phase.Module, wait time.Duration, log *slog.Logger) error {
	brokers := KafkaBrokers(cfg)
	peer := "the Kafka brokers at " + strings.Join(brokers, ",")
	ends, err := changefeed.TopicSpans(ctx, brokers, aggregateTopics(cfg, plan.BackSyncAggregates))
	if err != nil {
		return fmt.Errorf("the back sync (consumer group %s): %w", plan.BackSyncGroup, unreachable(peer, err))
	}
	deadline := time.Now().Add(wait)
	var logged time.Time
	for {
		committed, err := changefeed.CommittedOffsets(ctx, brokers, plan.BackSyncGroup, ends)
		if err != nil {
			return fmt.Errorf("the back sync: %w", unreachable(peer, err))
		}
		behind := ends.Behind(committed)
		if behind == 0 {
			if !logged.IsZero() {
				log.Info("the back sync caught up", "group", plan.BackSyncGroup)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the back sync (consumer group %s) did not catch up %s: %d events behind the service's writes", plan.BackSyncGroup, within(wait), behind)
		}
		if time.Since(logged) >= time.Second {
			log.Info("waiting for the back sync before the reads go back to the monolith", "group", plan.BackSyncGroup, "behind", behind)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// within says how long a wait waited, for an error: --wait 0 checks once.
func within(wait time.Duration) string {
	if wait <= 0 {
		return "(checked once: --wait 0)"
	}
	return "within " + wait.String()
}

// aggregateTopics are the topics (<kafka.topic_prefix>.<aggregate>) of
// aggregate types.
func aggregateTopics(cfg *config.Config, aggregates []string) []string {
	topics := make([]string, 0, len(aggregates))
	for _, agg := range aggregates {
		topics = append(topics, changefeed.Topic(cfg.Kafka.TopicPrefix, agg))
	}
	return topics
}

// candidateBackends are the backends that routing r sends the plan's
// traffic to, besides legacy: the candidate of each proxy module r does
// not leave on legacy, and of any of its routes that names its own. A
// module the table lacks has none here; routing it fails later with the
// proxy's own answer.
func candidateBackends(t *routes.Doc, plan phase.Module, r phase.Routing) []string {
	var modules []string
	reads, writes := r.ToCandidate()
	if reads {
		modules = append(modules, plan.ReadRoutes)
	}
	if writes && plan.WriteRoutes != "" {
		modules = append(modules, plan.WriteRoutes)
	}
	var out []string
	add := func(b string) {
		if b != "" && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	for _, name := range modules {
		m := t.Module(name)
		if m == nil {
			continue
		}
		add(m.Candidate)
		for _, rd := range m.Routes {
			add(rd.Candidate)
		}
	}
	return out
}

// awaitCandidates waits, for up to wait, until every live proxy replica
// has a healthy instance of each backend that routing r sends the plan's
// traffic to, so that no phase sends requests to a service the proxy
// cannot reach: in extracted mode they would fall back to the monolith,
// which refuses writes once the module is retired. A replica whose report
// does not count its backends' instances (an older proxy) is not checked,
// with a warning.
func awaitCandidates(ctx context.Context, c *adminclient.Client, plan phase.Module, r phase.Routing, wait time.Duration, log *slog.Logger) error {
	if reads, writes := r.ToCandidate(); !reads && !writes {
		return nil
	}
	t, err := c.Table(ctx)
	if err != nil {
		return fmt.Errorf("the route table: %w", err)
	}
	if t.Table == nil {
		return nil
	}
	backends := candidateBackends(t.Table, plan, r)
	if len(backends) == 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	warned := map[string]bool{}
	for {
		list, err := c.Replicas(ctx)
		if err != nil {
			return fmt.Errorf("the proxy replicas: %w", err)
		}
		missing := unhealthyCandidates(list, backends)
		for _, rep := range list {
			if rep.Backends == nil && !warned[rep.Name] {
				warned[rep.Name] = true
				log.Warn("proxy replica does not report its backends' health (an older proxy); its instances are not checked", "replica", rep.Name, "backends", strings.Join(backends, ","))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the proxy has no healthy instance of %s %s; nothing was changed — start the service or fix its health check, then run the command again", strings.Join(missing, "; "), within(wait))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unhealthyCandidates names, for each backend that some replica of list
// has no healthy instance of, the backend and those replicas. With no
// replica at all, nothing says the backends can serve, so every one is
// named.
func unhealthyCandidates(list []api.Replica, backends []string) []string {
	var out []string
	for _, b := range backends {
		if len(list) == 0 {
			out = append(out, "backend "+b+" (no proxy replica has reported)")
			continue
		}
		var on []string
		for _, rep := range list {
			if rep.Backends == nil {
				continue
			}
			i := slices.IndexFunc(rep.Backends, func(h api.BackendHealth) bool { return h.Name == b })
			switch {
			case i < 0:
				on = append(on, rep.Name+" (not in its table)")
			case rep.Backends[i].Healthy == 0:
				on = append(on, rep.Name+" ("+describeUnhealthy(rep.Backends[i])+")")
			}
		}
		if len(on) > 0 {
			out = append(out, "backend "+b+" on replica "+strings.Join(on, ", "))
		}
	}
	return out
}

// describeUnhealthy says why a backend with no healthy instance has none.
func describeUnhealthy(h api.BackendHealth) string {
	switch {
	case h.Instances == 0 && h.Service != "":
		return "no instance of service " + h.Service + " registered"
	case h.Instances == 0:
		return "no instance"
	case h.Instances == 1:
		return "its instance is not healthy"
	}
	return fmt.Sprintf("none of its %d instances healthy", h.Instances)
}

// awaitAcks waits until every component of the plan applied phase p.
func awaitAcks(ctx context.Context, c *adminclient.Client, plan phase.Module, p int, wait time.Duration) (*api.PhaseState, error) {
	deadline := time.Now().Add(wait)
	for {
		st, err := c.Phase(ctx, plan.Name)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, comp := range plan.Components {
			if a, ok := st.Acks[comp]; !ok || a != p {
				missing = append(missing, comp)
			}
		}
		if len(missing) == 0 {
			return st, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("phase %s of %s not applied by %s within %s; the phase is recorded, the proxy's routing unchanged — check those components and run the command again", phase.Phase(p), plan.Name, strings.Join(missing, ", "), wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// route sets the proxy modules of the plan to r. After each module's
// change it waits, for up to wait, until every live proxy replica serves
// it, so that the order below holds on every replica and the phase is
// reported done only once the whole fleet routes it.
func route(ctx context.Context, c *adminclient.Client, plan phase.Module, r phase.Routing, wait time.Duration) error {
	set := func(module, mode string, weight int) error { return setModule(ctx, c, module, mode, weight, wait) }
	if plan.WriteRoutes != "" && r.Writes == string(routes.ModeLegacy) {
		// Writes go back to legacy before reads move, and reads move
		// before writes go to the service, so that nothing reads a copy
		// older than what was just written through the other side.
		if err := set(plan.WriteRoutes, r.Writes, 0); err != nil {
			return err
		}
		return set(plan.ReadRoutes, r.Reads, r.Weight)
	}
	if err := set(plan.ReadRoutes, r.Reads, r.Weight); err != nil {
		return err
	}
	if plan.WriteRoutes != "" {
		return set(plan.WriteRoutes, r.Writes, 0)
	}
	return nil
}

// setModule sets one proxy module to mode and waits, for up to wait,
// until every live proxy replica serves the change.
func setModule(ctx context.Context, c *adminclient.Client, module, mode string, weight int, wait time.Duration) error {
	var (
		m   *api.Module
		err error
	)
	switch routes.Mode(mode) {
	case routes.ModeLegacy:
		m, err = c.Rollback(ctx, module)
	case routes.ModeShadow:
		m, err = c.Shadow(ctx, module)
	case routes.ModeCanary:
		m, err = c.Canary(ctx, module, weight)
	case routes.ModeExtracted:
		m, err = c.Flip(ctx, module)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return fmt.Errorf("route %s %s: %w", module, mode, err)
	}
	if err := awaitReplicas(ctx, c, m.Version, wait); err != nil {
		return fmt.Errorf("route %s %s: %w", module, mode, err)
	}
	return nil
}

// awaitReplicas waits until every live proxy replica (GET /v1/replicas
// lists those whose report has not expired) serves route table version v
// or a newer one. A proxy without a shared store lists itself alone, at
// the version it just served, so the wait ends at once. Replicas report
// every control.poll_interval, so the wait is about one interval.
func awaitReplicas(ctx context.Context, c *adminclient.Client, v int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		list, err := c.Replicas(ctx)
		if err != nil {
			return fmt.Errorf("the proxy replicas: %w", err)
		}
		var behind []string
		for _, r := range list {
			if r.Version < v {
				behind = append(behind, fmt.Sprintf("%s (at %d)", r.Name, r.Version))
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("table version %d not served by replica %s within %s; the change is saved and the other replicas serve it — check those replicas and run the command again", v, strings.Join(behind, ", "), wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Status is one module's line of `strangler status`.
type Status struct {
	Module string `json:"module"`
	Phase  int    `json:"phase"`
	Name   string `json:"phase_name"`
	// Reads and Writes describe the proxy's split.
	Reads  string `json:"reads"`
	Writes string `json:"writes,omitempty"`
	// ShadowCompared and ShadowMismatchRate come from the read routes.
	ShadowCompared     int64   `json:"shadow_compared"`
	ShadowMismatchRate float64 `json:"shadow_mismatch_rate"`
	// SyncLag is the sync group's unconsumed messages; -1 if unknown.
	SyncLag      int64  `json:"sync_lag"`
	SyncLagError string `json:"sync_lag_error,omitempty"`
	// BackSyncLag is the back sync group's unconsumed messages; -1 if
	// unknown or the plan names no back sync.
	BackSyncLag      int64  `json:"back_sync_lag"`
	BackSyncLagError string `json:"back_sync_lag_error,omitempty"`
	// Verify is the last verify result recorded.
	Verify *api.VerifyResult `json:"verify,omitempty"`
	// Acks are the components' applied phases.
	Acks map[string]int `json:"acks,omitempty"`
}

func newStatusCmd(a *App) *cobra.Command {
	o := &routesOpts{}
	cmd := &cobra.Command{
		Use:   "status [MODULE]",
		Short: "Show each extraction: phase, traffic split, shadow diffs, sync lag, last verify",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			plans := cfg.Phases.Modules
			if len(args) == 1 {
				p, ok := cfg.Phases.Find(args[0])
				if !ok {
					return usageError{fmt.Errorf("no module %q in phases.modules", args[0])}
				}
				plans = []phase.Module{p}
			}
			return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
				var out []Status
				for _, p := range plans {
					s, err := moduleStatus(ctx, cfg, c, p)
					if err != nil {
						return err
					}
					out = append(out, s)
				}
				return a.emit(o, out, func(w io.Writer, _ any) { printExtractions(w, out) })
			})
		},
	}
	a.bindPersistentString(cmd, "admin", "proxy.admin_addr", "admin API address (default 127.0.0.1:8081)")
	f := cmd.Flags()
	f.StringVar(&o.token, "token", "", "admin token (prefer $"+EnvAdminToken+" or the token file)")
	f.StringVarP(&o.output, "output", "o", "table", "output: table or json")
	return cmd
}

func moduleStatus(ctx context.Context, cfg *config.Config, c *adminclient.Client, p phase.Module) (Status, error) {
	st, err := c.Phase(ctx, p.Name)
	if err != nil {
		return Status{}, err
	}
	s := Status{Module: p.Name, Phase: st.Phase, Name: st.Name, Verify: st.Verify, Acks: st.Acks}
	reads, err := c.Module(ctx, p.ReadRoutes)
	if err != nil {
		return Status{}, fmt.Errorf("proxy module %s: %w", p.ReadRoutes, err)
	}
	s.Reads = describeMode(reads.Mode, reads.Weight)
	s.ShadowCompared = reads.Shadow.Compared
	s.ShadowMismatchRate = reads.Shadow.MismatchRate
	if p.WriteRoutes != "" {
		writes, err := c.Module(ctx, p.WriteRoutes)
		if err != nil {
			return Status{}, fmt.Errorf("proxy module %s: %w", p.WriteRoutes, err)
		}
		s.Writes = describeMode(writes.Mode, writes.Weight)
	}
	s.SyncLag, s.SyncLagError = groupLag(ctx, cfg, p.SyncGroup, p.SyncAggregates)
	s.BackSyncLag, s.BackSyncLagError = groupLag(ctx, cfg, p.BackSyncGroup, p.BackSyncAggregates)
	return s, nil
}

// groupLag is the lag of a consumer group on the topics of aggregates, or
// -1 and why it is unknown; -1 and no cause for no group.
func groupLag(ctx context.Context, cfg *config.Config, group string, aggregates []string) (int64, string) {
	if group == "" {
		return -1, ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lag, err := changefeed.GroupLag(ctx, KafkaBrokers(cfg), group, aggregateTopics(cfg, aggregates))
	if err != nil {
		return -1, err.Error()
	}
	return lag, ""
}

func printExtractions(w io.Writer, out []Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tPHASE\tREADS\tWRITES\tSHADOW DIFFS\tSYNC LAG\tLAST VERIFY")
	for _, s := range out {
		diffs := "-"
		if s.ShadowCompared > 0 {
			diffs = fmt.Sprintf("%.1f%% of %d", s.ShadowMismatchRate*100, s.ShadowCompared)
		}
		lag := "unknown"
		if s.SyncLag >= 0 {
			lag = fmt.Sprintf("%d events", s.SyncLag)
		}
		switch {
		case s.BackSyncLag >= 0:
			lag += fmt.Sprintf(", back %d", s.BackSyncLag)
		case s.BackSyncLagError != "":
			lag += ", back unknown"
		}
		ver := "never"
		if s.Verify != nil {
			result := "in sync"
			if s.Verify.Drift {
				result = "DRIFT"
			}
			ver = fmt.Sprintf("%s (%s, %s)", result, s.Verify.Summary, s.Verify.Time.Local().Format(time.DateTime))
		}
		writes := s.Writes
		if writes == "" {
			writes = "with reads"
		}
		fmt.Fprintf(tw, "%s\t%d %s\t%s\t%s\t%s\t%s\t%s\n", s.Module, s.Phase, s.Name, s.Reads, writes, diffs, lag, ver)
	}
	_ = tw.Flush()
}

func findJob(cfg *config.Config, name string) (backfill.Job, bool) {
	i := slices.IndexFunc(cfg.Backfill.Jobs, func(j backfill.Job) bool { return j.Name == name })
	if i < 0 {
		return backfill.Job{}, false
	}
	return cfg.Backfill.Jobs[i], true
}

// recordVerify stores a verify report as the last result of every
// extraction whose plan names the check, for `strangler status`. It is best
// effort: verify works without a running proxy.
func recordVerify(cmd *cobra.Command, a *App, cfg *config.Config, check string, rep *verify.Report, log *slog.Logger) {
	var modules []string
	for _, p := range cfg.Phases.Modules {
		if p.Verify == check {
			modules = append(modules, p.Name)
		}
	}
	if len(modules) == 0 {
		return
	}
	err := a.withAdmin(cmd, &routesOpts{output: "table"}, func(ctx context.Context, c *adminclient.Client) error {
		var errs []error
		for _, m := range modules {
			_, err := c.RecordVerify(ctx, m, api.VerifyResult{Check: check, Time: time.Now().UTC(), Drift: rep.Drift, Summary: verifySummary(rep)})
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		log.Debug("verify result not recorded with the proxy", "check", check, "error", err)
	}
}

// verifySummary is a report in a few words.
func verifySummary(r *verify.Report) string {
	settled := ""
	if r.Settled > 0 {
		settled = fmt.Sprintf(" (%d settled on recheck)", r.Settled)
	}
	if !r.Drift {
		return fmt.Sprintf("%d rows match%s", r.SourceRows, settled)
	}
	return fmt.Sprintf("%d missing, %d extra, %d changed of %d rows%s", r.MissingCount, r.ExtraCount, r.ChangedCount, r.SourceRows, settled)
}
