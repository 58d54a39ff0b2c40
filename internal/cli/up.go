package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/internal/private"
)

// component is one running part of a process: it has a name, an address to
// print, and a Run that returns once its context ends and it has stopped.
type component struct {
	name string
	addr string
	note string
	run  func(ctx context.Context) error
	// started, if set, is closed once run listens, and addr is then
	// read from bound: a component that listens in run, not when it is
	// built, learns a port 0's number only then.
	started <-chan struct{}
	bound   func() string
}

// upPart builds components for `strangler up`. Parts are built in order, so
// a later part may use what an earlier one set in the environment.
type upPart struct {
	order int
	build func(ctx context.Context, env *upEnv) ([]component, error)
}

// upEnv is what the parts of `up` share while they are built.
type upEnv struct {
	cfg *config.Config
	log *slog.Logger
	// monolithURL is the running monolith's base URL, set by its part,
	// for the proxy's legacy backend.
	monolithURL string
	// inventoryURL is the extracted inventory service's base URL, set by
	// its part.
	inventoryURL string
}

// inventoryServiceURL is where the monolith reaches the extracted
// inventory service: the one `up` runs, else services.inventory.addr.
func (e *upEnv) inventoryServiceURL() string {
	if e.inventoryURL != "" {
		return e.inventoryURL
	}
	return "http://" + e.cfg.Services.Inventory.Addr
}

var upParts []upPart

// registerUp adds a part to `strangler up`; lower orders are built first.
func registerUp(order int, build func(ctx context.Context, env *upEnv) ([]component, error)) {
	upParts = append(upParts, upPart{order: order, build: build})
}

// stopBudget is how long a process may take to stop after a signal.
const stopBudget = 10 * time.Second

func init() { register(newUpCmd) }

func newUpCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run everything in one process on embedded defaults",
		Long: `Run the whole system in one process: the monolith and, as they are added,
the proxy, its admin API, the broker, the relay and the extracted services.
It needs no set-up: data goes to SQLite files under --data-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			// The data dir holds customer data (SQLite files, the broker's
			// log): it is created for its owner alone.
			if err := private.MkdirAll(cfg.DataDir); err != nil {
				return fmt.Errorf("data dir: %w", err)
			}
			log := a.Logger(cfg)
			env := &upEnv{cfg: cfg, log: log}
			parts := append([]upPart(nil), upParts...)
			sort.SliceStable(parts, func(i, j int) bool { return parts[i].order < parts[j].order })
			var comps []component
			for _, p := range parts {
				cs, err := p.build(cmd.Context(), env)
				if err != nil {
					return err
				}
				comps = append(comps, cs...)
			}
			return startComponents(cmd.Context(), log, comps, func(comps []component) {
				fmt.Fprintf(a.Stdout, "strangler up: data in %s\n", cfg.DataDir)
				printComponents(a, comps)
			})
		},
	}
	a.BindBool(cmd, "seed", "monolith.seed", "load the demo data into an empty database (default true)")
	return cmd
}

func printComponents(a *App, comps []component) {
	tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
	for _, c := range comps {
		if c.note != "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.addr, c.note)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.addr)
		}
	}
	_ = tw.Flush()
}

// runOne is the RunE of a command that runs one component on its own:
// load the config, build the component, print its line (name, address and
// note, as up prints them) and run it until the command's context ends.
func (a *App) runOne(cmd *cobra.Command, build func(env *upEnv) (component, error)) error {
	cfg, err := a.Config(cmd)
	if err != nil {
		return err
	}
	log := a.Logger(cfg)
	c, err := build(&upEnv{cfg: cfg, log: log})
	if err != nil {
		return err
	}
	line := c.name + "  " + c.addr
	if c.note != "" {
		line += "  " + c.note
	}
	fmt.Fprintln(a.Stdout, line)
	return runComponents(cmd.Context(), log, []component{c})
}

// runComponents runs every component until ctx ends or one fails, then
// stops them all. A component that fails stops the others; a process that
// does not stop within stopBudget is reported.
func runComponents(ctx context.Context, log *slog.Logger, comps []component) error {
	return startComponents(ctx, log, comps, nil)
}

// startComponents is runComponents that calls announce, if set, once
// every component that says when it listens has started, with their bound
// addresses filled in. A component that fails first ends it without an
// announcement.
func startComponents(ctx context.Context, log *slog.Logger, comps []component, announce func([]component)) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range comps {
		g.Go(func() error {
			if err := c.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	comps = append([]component(nil), comps...)
	for i, c := range comps {
		if c.started == nil {
			continue
		}
		select {
		case <-c.started:
			comps[i].addr = c.bound()
		case err := <-done:
			return err
		case <-gctx.Done():
		}
	}
	if announce != nil && gctx.Err() == nil {
		announce(comps)
	}
	select {
	case err := <-done:
		return err
	case <-gctx.Done():
	}
	log.Info("stopping")
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		log.Info("stopped")
		return nil
	case <-time.After(stopBudget - time.Second):
		return fmt.Errorf("components did not stop within %s", stopBudget)
	}
}
