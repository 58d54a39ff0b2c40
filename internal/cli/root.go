// Package cli is the strangler command line: the toolkit's components (up,
// proxy, broker, relay) and the operator commands (routes, phase, migrate,
// verify, ...). Each command lives in its own file and adds itself with
// register, so main stays a single call. A program built on the toolkit,
// such as the reference shop (extracted/shop), adds its own commands,
// components and defaults through the registration API in wiring.go.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/internal/logging"
)

// App carries what every command shares: the output streams and the config
// layers named on the command line.
type App struct {
	Stdout io.Writer
	Stderr io.Writer

	configFile string
	// bound maps flags to the config paths they override.
	bound map[*pflag.Flag]string
}

// ExitError ends the process with Code after printing Err, for commands whose
// failure has a meaning of its own, such as verify finding drift.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// constructors holds the commands that files of this package register.
var constructors []func(*App) *cobra.Command

// register adds a top-level command.
func register(f func(*App) *cobra.Command) { constructors = append(constructors, f) }

// Main runs the command line and returns the process exit code: 0 on
// success, 2 for usage errors, the ExitError's code, or 1. It first sets
// the process's garbage-collector defaults (GOGC 400, a 1 GiB memory
// limit) where the environment does not set GOGC or GOMEMLIMIT (see
// tuneGC).
func Main(args []string, stdout, stderr io.Writer) int {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process the default way.
	go func() {
		<-ctx.Done()
		stop()
	}()
	return Run(ctx, args, stdout, stderr)
}

// Run runs the command line until it is done or ctx ends, and returns the
// process exit code as Main does, for a program or a test that owns the
// process's signals.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &App{Stdout: stdout, Stderr: stderr, bound: map[*pflag.Flag]string{}}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "strangler: "+oneLine(err.Error()))
	var exit *ExitError
	switch {
	case errors.As(err, &exit):
		return exit.Code
	case isUsageError(err):
		fmt.Fprintln(stderr, "Run 'strangler --help' for usage.")
		return 2
	default:
		return 1
	}
}

// usageError marks errors in how a command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func isUsageError(err error) bool {
	var u usageError
	if errors.As(err, &u) {
		return true
	}
	// cobra reports unknown commands and flags as plain errors.
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// oneLine folds a multi-line message so that a cause fits on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (a *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "strangler",
		Short: "Move a monolith to services, one module at a time",
		Long: `Strangler runs a monolith behind a routing proxy and moves its modules to
extracted services step by step: shadow, canary, flip, rollback.

Run 'strangler up' to start everything in one process on embedded defaults.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFile, "config", "", "YAML config file (default $STRANGLER_CONFIG)")
	a.bindPersistent(root, "data-dir", "data_dir", "directory for embedded data (default ./.strangler)")
	a.bindPersistent(root, "log-level", "log.level", "log level: debug, info, warn or error (default info)")
	a.bindPersistent(root, "log-format", "log.format", "log format: json or text (default json)")
	cmds := make([]*cobra.Command, 0, len(constructors))
	for _, c := range constructors {
		cmd := c(a)
		for _, f := range extensions[cmd.Name()] {
			f(a, cmd)
		}
		cmds = append(cmds, cmd)
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	root.AddCommand(cmds...)
	return root
}

func (a *App) bindPersistent(cmd *cobra.Command, name, path, usage string) {
	cmd.PersistentFlags().String(name, "", usage)
	a.bound[cmd.PersistentFlags().Lookup(name)] = path
}

// BindString adds a string flag to cmd that overrides the config setting at
// path. Its default is empty: the config's layers decide unless the flag is
// set.
func (a *App) BindString(cmd *cobra.Command, name, path, usage string) {
	cmd.Flags().String(name, "", usage)
	a.bound[cmd.Flags().Lookup(name)] = path
}

// BindBool adds a boolean flag that overrides the config setting at path.
func (a *App) BindBool(cmd *cobra.Command, name, path, usage string) {
	cmd.Flags().Bool(name, false, usage)
	a.bound[cmd.Flags().Lookup(name)] = path
}

// Config loads the effective config for cmd: defaults, the YAML file,
// STRANGLER_* variables, then the bound flags that were set.
func (a *App) Config(cmd *cobra.Command) (*config.Config, error) {
	overrides := map[string]string{}
	for f, path := range a.bound {
		if f.Changed {
			overrides[path] = f.Value.String()
		}
	}
	cfg, err := config.Load(config.LoadOptions{File: a.configFile, Overrides: overrides, Base: program.Defaults})
	if err != nil {
		return nil, err
	}
	if program.Resolve != nil {
		program.Resolve(cfg)
	}
	return cfg, nil
}

// Logger builds the process logger, writing to stderr.
func (a *App) Logger(cfg *config.Config) *slog.Logger {
	return logging.New(cfg.Log, a.Stderr)
}
