package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
)

func init() {
	register(newProxyCmd)
	RegisterUp(50, "proxy", func(ctx context.Context, env *UpEnv) ([]Component, error) {
		return proxyComponents(env, true)
	})
}

// defaultLegacy is the proxy's default legacy URL, which is the monolith's
// default address.
const defaultLegacy = "http://127.0.0.1:9001"

// proxyComponents builds the proxy and names its two listeners. In `up`,
// the legacy backend is the monolith that `up` runs, wherever it listens,
// unless proxy.legacy names another.
func proxyComponents(env *UpEnv, inUp bool) ([]Component, error) {
	cfg := env.cfg.Proxy
	if inUp && cfg.Legacy == defaultLegacy && env.LegacyURL != "" {
		cfg.Legacy = env.LegacyURL
	}
	tokenPath, _, err := proxy.EnsureToken(&cfg)
	if err != nil {
		return nil, err
	}
	var opts []proxy.Option
	if inUp && program.UpRoutes != nil {
		// up runs the program (the shop), so the proxy starts on its table,
		// with inventory's reads and writes ready to move to the extracted
		// service; `strangler proxy` alone starts on a catch-all route.
		doc, err := program.UpRoutes()
		if err != nil {
			return nil, err
		}
		opts = append(opts, proxy.WithInitialTable(doc))
	}
	log := env.log.With("component", "proxy")
	store := controlStore(env.cfg.Control, log)
	if store != nil {
		opts = append(opts, proxy.WithStore(store))
	}
	opts = append(opts, proxy.WithControlConfig(env.cfg.Control))
	p, err := proxy.New(cfg, log, opts...)
	if err != nil {
		if store != nil {
			_ = store.Close()
		}
		return nil, err
	}
	closeAll := func() error {
		err := p.Close()
		if store != nil {
			err = errors.Join(err, store.Close())
		}
		return err
	}
	// left is the admin address left in the data dir once it listens.
	var left string
	note := "token from config"
	if tokenPath != "" {
		note = "token in " + tokenPath
	}
	return []Component{
		{Name: "proxy", Addr: func() string { return "http://" + p.Addr() }, Note: fmt.Sprintf("legacy %s, table v%d", cfg.Legacy, p.Version()), Run: p.Run,
			Started: p.Started(), Close: closeAll},
		// The proxy's Run serves the admin listener too; this entry names it.
		// It also leaves the bound address in the data dir, for the CLI.
		{Name: "admin", Addr: func() string { return "http://" + p.AdminAddr() }, Note: note, Run: func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}, Started: p.Started(), OnStarted: func() {
			left = p.AdminAddr()
			if err := writeAdminAddr(env.cfg.DataDir, left); err != nil {
				log.Warn("admin address not left in the data dir; the CLI needs --admin or the config to find it", "error", err)
			}
		}, Close: func() error {
			removeAdminAddr(env.cfg.DataDir, left)
			return nil
		}},
	}, nil
}

// controlStore is the shared control store that control.dsn names, or nil
// for the embedded one, which the proxy opens in its state dir. The
// shared one opens (and migrates) on first use and again on each use
// until it succeeds, so that a replica starts while Postgres is down: it
// serves 503 no-table and is not ready until it has read a table.
func controlStore(c control.StoreConfig, log *slog.Logger) *control.Lazy {
	if c.DSN == "" {
		return nil
	}
	return control.NewLazy(func(ctx context.Context) (control.Store, error) {
		return pgstore.Open(ctx, c.DSN, pgstore.Options{Logger: log, KeepHistory: c.KeepHistory})
	})
}

func newProxyCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the routing proxy and its admin API on their own",
		Long: `Run the strangler proxy in front of a monolith (any HTTP server): every
route goes to legacy until a module is shadowed, canaried or flipped to its
extracted service with 'strangler routes'.

The route table comes from --routes-file (watched and reloaded), else from
the state persisted under the data dir (or, with control.dsn a postgres://
URL, in the control store that several replicas share), else one
catch-all route to legacy.
The admin API needs a bearer token: proxy.admin_token, or the token file
under the data dir, created on first start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			part := upPart{build: func(_ context.Context, env *UpEnv) ([]Component, error) { return proxyComponents(env, false) }}
			return serve(cmd.Context(), &UpEnv{cfg: cfg, log: a.Logger(cfg)}, []upPart{part}, func(comps []Component) { printComponents(a, comps) })
		},
	}
	a.BindString(cmd, "addr", "proxy.addr", "listen address of the data plane (default 127.0.0.1:8080)")
	a.BindString(cmd, "admin-addr", "proxy.admin_addr", "listen address of the admin API (default 127.0.0.1:8081)")
	a.BindString(cmd, "legacy", "proxy.legacy", "the monolith's base URL (default http://127.0.0.1:9001)")
	a.BindString(cmd, "routes-file", "proxy.routes_file", "route table file in YAML, reloaded on change")
	a.BindString(cmd, "control-dsn", "control.dsn", "postgres:// URL of the control store that replicas share (default: the embedded store in the state dir)")
	a.BindString(cmd, "state-dir", "proxy.state_dir", "where the table state and audit log are kept (default <data-dir>/proxy)")
	return cmd
}
