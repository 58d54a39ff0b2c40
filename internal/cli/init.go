package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/routes"
	"github.com/stranglerkit/strangler/proxy/routes/openapi"
)

func init() { register(newInitCmd) }

// The files that `strangler init` writes in its directory.
const (
	initConfigFile = "strangler.yaml"
	initRoutesFile = "routes.yaml"
)

// initOpts are init's flags.
type initOpts struct {
	legacy  string
	openapi string
	dir     string
	force   bool
}

func newInitCmd(a *App) *cobra.Command {
	o := &initOpts{}
	cmd := &cobra.Command{
		Use:   "init --legacy URL [--openapi FILE|URL] [--dir DIR]",
		Short: "Write a config and a route table for your monolith",
		Long: `Write strangler.yaml, a documented config for a proxy in front of the
monolith at --legacy, and routes.yaml, its route table: a catch-all module
"default" that sends everything to legacy and, with --openapi, one module per
tag of the spec (or per first path segment when the spec has no tags) whose
routes are the spec's paths and methods. OpenAPI 3.x and Swagger 2.0 specs
are read, in YAML or JSON, from a file or an http(s) URL.

Existing files are kept unless --force is given; nothing is written when the
spec cannot be read.`,
		Example: `  strangler init --legacy http://127.0.0.1:3000
  strangler init --legacy http://app.internal:8000 --openapi docs/openapi.yaml --dir deploy/strangler`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runInit(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.legacy, "legacy", "", "the monolith's base URL, such as http://127.0.0.1:3000 (required)")
	f.StringVar(&o.openapi, "openapi", "", "OpenAPI 3 or Swagger 2 spec of the monolith: a file or an http(s) URL")
	f.StringVar(&o.dir, "dir", ".", "directory to write strangler.yaml and routes.yaml in")
	f.BoolVar(&o.force, "force", false, "overwrite existing files")
	return cmd
}

func (a *App) runInit(cmd *cobra.Command, o *initOpts) error {
	if o.legacy == "" {
		return usageError{errors.New("init needs --legacy URL, the monolith's base URL")}
	}
	if _, err := routes.ParseBackendURL(o.legacy); err != nil {
		return usageError{fmt.Errorf("--legacy: %w", err)}
	}
	res := &openapi.Result{}
	source := "no spec: only the catch-all module"
	if o.openapi != "" {
		b, err := openapi.Read(cmd.Context(), o.openapi)
		if err != nil {
			return err
		}
		doc, err := openapi.Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", o.openapi, err)
		}
		res = openapi.Modules(doc)
		source = "from " + o.openapi
	}
	configPath := filepath.Join(o.dir, initConfigFile)
	routesPath := filepath.Join(o.dir, initRoutesFile)
	if !o.force {
		for _, p := range []string{configPath, routesPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s exists; keep it, or run init again with --force to overwrite it", p)
			}
		}
	}
	comments := map[string]string{"default": "Everything no module above takes goes to legacy."}
	for name, d := range res.Descriptions {
		comments[name] = d
	}
	table, err := renderTable(res.Doc(), routesHeader(o.legacy, source), comments)
	if err != nil {
		return err
	}
	if _, err := compileTable(table, o.legacy); err != nil {
		// The table is made from a spec, so this is a defect of init.
		return fmt.Errorf("init made an invalid route table: %w", err)
	}
	cfgYAML, err := initConfig(o.legacy, o.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	// The config is checked as the proxy will load it, before it lands.
	if err := writeChecked(configPath, cfgYAML, 0o644, func(tmp string) error {
		_, err := config.Load(config.LoadOptions{File: tmp, LookupEnv: noEnvironment})
		return err
	}); err != nil {
		return err
	}
	if err := writeChecked(routesPath, table, 0o644, nil); err != nil {
		return err
	}
	printNextSteps(a.Stdout, configPath, routesPath, res)
	return nil
}

// noEnvironment hides the environment, so that a check of a written file
// sees only the file.
func noEnvironment(string) (string, bool) { return "", false }

// writeChecked writes b to a temporary file next to path, runs check on it
// if not nil, and renames it to path, so that path is either what it was or
// all of b.
func writeChecked(path string, b []byte, mode os.FileMode, check func(tmp string) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil && check != nil {
		err = check(tmp)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// routesHeader is the routes file's leading comment. It is one paragraph,
// so that YAML keeps it as the file's comment when the file is edited.
func routesHeader(legacy, source string) string {
	return `The proxy's route table (docs/proxy.md), written by strangler init
` + source + `.
The proxy reloads this file when it changes. Edit it, or use
"strangler routes add-module | set-candidate | remove-module", which keep
its comments. A module's requests go to the backend "legacy"
(proxy.legacy in strangler.yaml: ` + legacy + `) until the module
gets a candidate and is shadowed, canaried or flipped. The most specific
route wins, so the catch-all module "default" takes only what no other
module takes.`
}

// initConfig renders the config that init writes: the proxy's settings
// that a new user sets or wants to know of, each with what it does and
// its default, from the proxy's own defaults.
func initConfig(legacy, dir string) ([]byte, error) {
	dataDir := filepath.Join(dir, ".strangler")
	def := proxy.Config{}
	def.SetDefaults(dataDir)
	type entry struct{ key, value, doc string }
	top := []entry{
		{"data_dir", dataDir, "data_dir holds what the proxy writes: the admin token (admin.token), the\npersisted route table and the audit log of every change. It is created\n0700. A relative path is relative to the working directory."},
	}
	proxyEntries := []entry{
		{"addr", def.Addr, "addr is the front door: point clients here instead of at the monolith."},
		{"admin_addr", def.AdminAddr, "admin_addr serves the admin API (`strangler routes` and `strangler phase`\nfind it here through --config or $STRANGLER_CONFIG), /metrics, /healthz\nand /readyz. It must differ from addr."},
		{"legacy", legacy, "legacy is the monolith's base URL: the backend called \"legacy\", which\nevery route goes to until its module is shadowed, canaried or flipped."},
		{"routes_file", filepath.Join(dir, initRoutesFile), "routes_file is the route table, watched and reloaded when it changes.\nWith it, the table is the file's: `strangler routes add-module` and\nfriends edit the file. \"\" means the table the admin API manages."},
	}
	mapping := func(es []entry) *yaml.Node {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, e := range es {
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Value: e.key, HeadComment: e.doc},
				&yaml.Node{Kind: yaml.ScalarNode, Value: e.value})
		}
		return m
	}
	root := mapping(top)
	root.Content = append(root.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Value: "proxy", HeadComment: "The routing proxy in front of the monolith, and its admin API. Every\nother setting and its default: strangler.example.yaml, or\n`strangler config print --config " + filepath.Join(dir, initConfigFile) + "`."},
		mapping(proxyEntries))
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: "Strangler's config for a proxy in front of " + legacy + ", written by strangler init.\nLayers, each overriding the one before: the defaults, this file (--config,\nor $STRANGLER_CONFIG), STRANGLER_* variables (proxy.legacy is\nSTRANGLER_PROXY_LEGACY), then flags."}
	return marshalYAML(doc)
}

func printNextSteps(w io.Writer, configPath, routesPath string, res *openapi.Result) {
	fmt.Fprintf(w, "wrote %s and %s (%d modules and the catch-all \"default\")\n", configPath, routesPath, len(res.Modules))
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	module := "MODULE"
	if len(res.Modules) > 0 {
		module = res.Modules[0].Name
	}
	c := "--config " + configPath
	steps := [][2]string{
		{"strangler proxy " + c, "start the proxy; point clients at its addr"},
		{"strangler routes list " + c, "the modules and their modes"},
		{"strangler routes discover " + c, "modules and path templates from the traffic seen"},
		{"strangler routes set-candidate " + module + " http://127.0.0.1:9100 " + c, "the module's extracted service"},
		{"strangler routes shadow " + module + " " + c, "copy its requests to the service, compare answers"},
		{"strangler routes canary " + module + " --weight 10 " + c, "send 10% of users to the service"},
		{"strangler routes flip " + module + " " + c, "send all of it to the service, legacy as fallback"},
	}
	width := 0
	for _, s := range steps {
		width = max(width, len(s[0]))
	}
	fmt.Fprintln(w, "\nNext:")
	for _, s := range steps {
		fmt.Fprintf(w, "  %s%s  # %s\n", s[0], strings.Repeat(" ", width-len(s[0])), s[1])
	}
}
