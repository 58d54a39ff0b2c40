package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/stranglerkit/strangler/extracted/shop"
	"log/slog"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/internal/private"
)

// component is one part of a process: its name, the address to print, and
// its lifecycle. Building it (New) opened no listener; run listens, serves
// until its context ends and returns once it has stopped; close releases
// what the build took.
type component struct {
	name string
	// addr is the address to print: the bound one once started is closed.
	addr func() string
	note string
	run  func(ctx context.Context) error
	// started, if not nil, is closed once run listens; up waits for it
	// before it builds the next part or prints addr.
	started <-chan struct{}
	// onStarted, if not nil, is called once the component listens and
	// before the next part is built: it passes the bound address on in the
	// environment (the broker's to the relay, the monolith's to the proxy).
	onStarted func()
	// close, if not nil, releases what the build took. It is called once
	// run has returned.
	close func() error
}

// fixed is the addr of a component whose address is known at build.
func fixed(addr string) func() string { return func() string { return addr } }

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
	return "http://" + shop.Services.Of(e.cfg).Inventory.Addr
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
			return serve(cmd.Context(), env, parts, func(comps []component) {
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
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.addr(), c.note)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.addr())
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
	return serve(cmd.Context(), &upEnv{cfg: cfg, log: a.Logger(cfg)}, []upPart{onePart(build)}, func(comps []component) {
		c := comps[0]
		line := c.name + "  " + c.addr()
		if c.note != "" {
			line += "  " + c.note
		}
		fmt.Fprintln(a.Stdout, line)
	})
}

// onePart is the part that build makes alone.
func onePart(build func(env *upEnv) (component, error)) upPart {
	return upPart{build: func(_ context.Context, env *upEnv) ([]component, error) {
		c, err := build(env)
		if err != nil {
			return nil, err
		}
		return []component{c}, nil
	}}
}

// serve builds the parts in order and starts each part's components as
// soon as it is built, waiting until they listen before it builds the next
// part, which may use their addresses. Once all listen, it calls print and
// runs them until ctx ends or one fails. A build that fails, or a component
// that fails (a port in use), stops the components started so far; each
// built component is closed once its run has returned, and the error names
// the cause. A process that does not stop within stopBudget is reported.
func serve(ctx context.Context, env *upEnv, parts []upPart, print func([]component)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	var comps []component
	buildErr := startParts(gctx, g, env, parts, &comps)
	if buildErr != nil {
		cancel()
	} else if gctx.Err() == nil {
		print(comps)
	}
	err, stopped := waitComponents(gctx, env.log, g)
	if stopped {
		for i := len(comps) - 1; i >= 0; i-- {
			if c := comps[i]; c.close != nil {
				if err := c.close(); err != nil {
					env.log.Warn("close", "component", c.name, "error", err)
				}
			}
		}
	}
	if buildErr != nil {
		return buildErr
	}
	return err
}

// startParts builds each part, runs its components in g and waits until
// they listen, adding them to comps as they are built. It returns the first
// build's error, or nil early when ctx ends (a component failed).
func startParts(ctx context.Context, g *errgroup.Group, env *upEnv, parts []upPart, comps *[]component) error {
	for _, p := range parts {
		cs, err := p.build(ctx, env)
		if err != nil {
			return err
		}
		*comps = append(*comps, cs...)
		for _, c := range cs {
			// The components' errors name them: the packages' own say
			// "monolith: …", and the runs here wrap theirs likewise.
			g.Go(func() error { return c.run(ctx) })
		}
		for _, c := range cs {
			if c.started != nil {
				select {
				case <-c.started:
				case <-ctx.Done():
					return nil
				}
			}
			if c.onStarted != nil {
				c.onStarted()
			}
		}
	}
	return nil
}

// waitComponents waits for the components run in g until ctx ends or one
// fails, then for all of them to stop. stopped is false when they did not
// stop within stopBudget.
func waitComponents(ctx context.Context, log *slog.Logger, g *errgroup.Group) (err error, stopped bool) {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err, true
	case <-ctx.Done():
	}
	log.Info("stopping")
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err, true
		}
		log.Info("stopped")
		return nil, true
	case <-time.After(stopBudget - time.Second):
		return fmt.Errorf("components did not stop within %s", stopBudget), false
	}
}
