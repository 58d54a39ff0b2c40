package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/internal/private"
)

// Component is one part of a process: its name, the address to print, and
// its lifecycle. Building it (New) opened no listener; Run listens, serves
// until its context ends and returns once it has stopped; Close releases
// what the build took. A program's wiring builds its own components for
// `strangler up` (RegisterUp) and for commands that run one (App.RunOne).
type Component struct {
	// Name names the component in up's lines and in the UpEnv's addresses.
	Name string
	// Addr is the address to print: the bound one once Started is closed.
	Addr func() string
	// Note, if not empty, follows the address in up's line.
	Note string
	// Run serves until its context ends.
	Run func(ctx context.Context) error
	// Started, if not nil, is closed once Run listens; up waits for it
	// before it builds the next part or prints Addr.
	Started <-chan struct{}
	// OnStarted, if not nil, is called once the component listens and
	// before the next part is built: it passes the bound address on in the
	// environment (the broker's to the relay, the legacy's to the proxy).
	OnStarted func()
	// Close, if not nil, releases what the build took. It is called once
	// Run has returned.
	Close func() error
}

// upPart builds components for `strangler up`. Parts are built in order, so
// a later part may use what an earlier one set in the environment.
type upPart struct {
	order int
	// name names the part, for tests that serve some parts alone.
	name  string
	build func(ctx context.Context, env *UpEnv) ([]Component, error)
}

// UpEnv is what the parts of `up` share while they are built.
type UpEnv struct {
	cfg *config.Config
	log *slog.Logger
	// LegacyURL is the base URL of the legacy system that up runs, which
	// its part sets once it listens, for the proxy's legacy backend. If
	// empty, the proxy uses proxy.legacy.
	LegacyURL string

	mu sync.Mutex
	// addrs maps the names of the started components to their addresses.
	addrs map[string]string
}

// Config returns the effective config.
func (e *UpEnv) Config() *config.Config { return e.cfg }

// Log returns the process logger.
func (e *UpEnv) Log() *slog.Logger { return e.log }

// Addr returns the bound address of the started component name, or "" if
// none has started: a component may reach one that a later part runs,
// once it is up.
func (e *UpEnv) Addr(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addrs[name]
}

func (e *UpEnv) started(c Component) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.addrs == nil {
		e.addrs = map[string]string{}
	}
	e.addrs[c.Name] = c.Addr()
}

var upParts []upPart

// RegisterUp adds a part, named name, to `strangler up`; lower orders are
// built first. The toolkit's parts are the broker (10), the relay (30) and
// the proxy (50); a program's wiring puts its own between them, such as a
// legacy system before the relay.
func RegisterUp(order int, name string, build func(ctx context.Context, env *UpEnv) ([]Component, error)) {
	upParts = append(upParts, upPart{order: order, name: name, build: build})
}

// UpPidFile is the file under the data dir where `strangler up` writes its
// process id while it runs.
const UpPidFile = "up.pid"

// stopBudget is how long a process may take to stop after a signal.
const stopBudget = 10 * time.Second

func init() { register(newUpCmd) }

func newUpCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run everything in one process on embedded defaults",
		Long: `Run the whole system in one process: the monolith and, as they are added,
the proxy, its admin API, the broker, the relay and the extracted services.
It needs no set-up: data goes to SQLite files under --data-dir. Once every
part listens, it writes its process id to <data-dir>/up.pid (removed when
it stops), for scripts that signal it.`,
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
			env := &UpEnv{cfg: cfg, log: log}
			parts := append([]upPart(nil), upParts...)
			sort.SliceStable(parts, func(i, j int) bool { return parts[i].order < parts[j].order })
			// The pid file is written once up serves, so that a script that
			// reads it signals a process that is ready, and removed only
			// by the up that wrote it: one that fails to start (its ports
			// taken by another) leaves the other's alone.
			pidFile := filepath.Join(cfg.DataDir, UpPidFile)
			wrote := false
			defer func() {
				if wrote {
					_ = os.Remove(pidFile)
				}
			}()
			return serve(cmd.Context(), env, parts, func(comps []Component) {
				if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
					log.Warn("pid file", "path", pidFile, "error", err)
				} else {
					wrote = true
				}
				fmt.Fprintf(a.Stdout, "strangler up: data in %s\n", cfg.DataDir)
				printComponents(a, comps)
			})
		},
	}
	return cmd
}

func printComponents(a *App, comps []Component) {
	tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
	for _, c := range comps {
		if c.Note != "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, c.Addr(), c.Note)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Addr())
		}
	}
	_ = tw.Flush()
}

// runOne is the RunE of a command that runs one component on its own:
// load the config, build the component, print its line (name, address and
// note, as up prints them) and run it until the command's context ends.
func (a *App) RunOne(cmd *cobra.Command, build func(env *UpEnv) (Component, error)) error {
	cfg, err := a.Config(cmd)
	if err != nil {
		return err
	}
	return serve(cmd.Context(), &UpEnv{cfg: cfg, log: a.Logger(cfg)}, []upPart{onePart(build)}, func(comps []Component) {
		c := comps[0]
		line := c.Name + "  " + c.Addr()
		if c.Note != "" {
			line += "  " + c.Note
		}
		fmt.Fprintln(a.Stdout, line)
	})
}

// onePart is the part that build makes alone.
func onePart(build func(env *UpEnv) (Component, error)) upPart {
	return upPart{build: func(_ context.Context, env *UpEnv) ([]Component, error) {
		c, err := build(env)
		if err != nil {
			return nil, err
		}
		return []Component{c}, nil
	}}
}

// serve builds the parts in order and starts each part's components as
// soon as it is built, waiting until they listen before it builds the next
// part, which may use their addresses. Once all listen, it calls print and
// runs them until ctx ends or one fails. A build that fails, or a component
// that fails (a port in use), stops the components started so far; each
// built component is closed once its run has returned, and the error names
// the cause. A process that does not stop within stopBudget is reported.
func serve(ctx context.Context, env *UpEnv, parts []upPart, print func([]Component)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	var comps []Component
	buildErr := startParts(gctx, g, env, parts, &comps)
	if buildErr != nil {
		cancel()
	} else if gctx.Err() == nil {
		print(comps)
	}
	err, stopped := waitComponents(gctx, env.log, g)
	if stopped {
		for i := len(comps) - 1; i >= 0; i-- {
			if c := comps[i]; c.Close != nil {
				if err := c.Close(); err != nil {
					env.log.Warn("close", "component", c.Name, "error", err)
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
func startParts(ctx context.Context, g *errgroup.Group, env *UpEnv, parts []upPart, comps *[]Component) error {
	for _, p := range parts {
		cs, err := p.build(ctx, env)
		if err != nil {
			return err
		}
		*comps = append(*comps, cs...)
		for _, c := range cs {
			// The components' errors name them: the packages' own say
			// "monolith: …", and the runs here wrap theirs likewise.
			g.Go(func() error { return c.Run(ctx) })
		}
		for _, c := range cs {
			if c.Started != nil {
				select {
				case <-c.Started:
				case <-ctx.Done():
					return nil
				}
			}
			env.started(c)
			if c.OnStarted != nil {
				c.OnStarted()
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
