package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// beforeTableWrite, if not nil, runs after an edit is made and before it
// is written, so that a test can change the table meanwhile.
var beforeTableWrite func()

// tableEdit changes a route table. It works on the document's YAML nodes,
// so that a routes file keeps its comments and layout; doc is the same
// table decoded, to look things up in. It returns what it did, in a line.
type tableEdit func(doc *routes.Doc, root *yaml.Node) (string, error)

// newRoutesEditCmds are the routes subcommands that edit the table without
// writing YAML, and export and validate.
func newRoutesEditCmds(a *App, o *routesOpts) []*cobra.Command {
	var prefix, methods, candidate string
	add := &cobra.Command{
		Use:   "add-module NAME --prefix /api/articles [--methods GET,POST] [--candidate URL|SERVICE]",
		Short: "Add a module with one prefix route; the catch-all stays last",
		Args:  exactModule,
		RunE: func(cmd *cobra.Command, args []string) error {
			if prefix == "" {
				return usageError{errors.New("add-module needs --prefix, such as --prefix /api/articles")}
			}
			var ms []string
			for _, m := range strings.Split(methods, ",") {
				if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
					ms = append(ms, m)
				}
			}
			return a.editTable(cmd, o, addModule(args[0], prefix, ms, candidate))
		},
	}
	add.Flags().StringVar(&prefix, "prefix", "", "path prefix the module takes, such as /api/articles")
	add.Flags().StringVar(&methods, "methods", "", "comma-separated methods the route takes (default any)")
	add.Flags().StringVar(&candidate, "candidate", "", "the extracted service: a base URL, or a service name that instances register under")

	setCandidate := &cobra.Command{
		Use:   "set-candidate NAME URL|SERVICE",
		Short: "Set a module's candidate: a base URL, or a registered service's name",
		Args:  exactArgs(2, "a MODULE and a URL or SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.editTable(cmd, o, setModuleCandidate(args[0], args[1]))
		},
	}
	remove := &cobra.Command{
		Use:   "remove-module NAME",
		Short: "Remove a module; its requests go to what else matches, such as the catch-all",
		Args:  exactModule,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.editTable(cmd, o, removeModule(args[0]))
		},
	}

	var format string
	export := &cobra.Command{
		Use:   "export [-o yaml|json]",
		Short: "Print the table that serves, as a routes file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "yaml" && format != "json" {
				return usageError{fmt.Errorf("-o must be yaml or json, not %q", format)}
			}
			return a.withAdmin(cmd, &routesOpts{token: o.token, output: "table"}, func(ctx context.Context, c *adminclient.Client) error {
				t, err := c.Table(ctx)
				if err != nil {
					return err
				}
				if format == "json" {
					enc := json.NewEncoder(a.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(t.Table)
				}
				b, err := renderTable(t.Table, "", nil)
				if err != nil {
					return err
				}
				_, err = a.Stdout.Write(b)
				return err
			})
		},
	}
	export.Flags().StringVarP(&format, "output", "o", "yaml", "output: yaml or json")

	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a routes file and list every problem in it",
		Args:  exactArgs(1, "exactly one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			return validateFile(a.Stdout, args[0], cfg.Proxy.Legacy)
		},
	}
	return []*cobra.Command{add, setCandidate, remove, export, validate}
}

// exactArgs accepts n arguments, and says that the command needs what
// otherwise.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s needs %s, got %d arguments", cmd.Name(), what, len(args))}
		}
		return nil
	}
}

// validateFile compiles the routes file at path as the proxy would, with
// legacy as the backend "legacy" unless the file defines it, and prints
// every problem on a line of its own.
func validateFile(w io.Writer, path, legacy string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tbl, err := compileTable(raw, legacy)
	var te *routes.Error
	if errors.As(err, &te) {
		for _, p := range te.Problems {
			fmt.Fprintln(w, p)
		}
		return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d problems, listed above", path, len(te.Problems))}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(w, "%s: valid, %d modules, %d routes\n", path, len(tbl.Modules), len(tbl.Routes))
	if !tbl.CatchAll() {
		fmt.Fprintln(w, "warning: no route takes prefix / without conditions, so requests outside the table's routes get 404")
	}
	return nil
}

// compileTable parses and compiles a table as the proxy does, with legacy
// as the backend "legacy" unless the table defines it.
func compileTable(raw []byte, legacy string) (*routes.Table, error) {
	doc, err := routes.Parse(raw)
	if err != nil {
		return nil, err
	}
	return routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{routes.DefaultLegacy: {URLs: []string{legacy}}}})
}

// editTable applies edit where the table lives. With proxy.routes_file set
// in the config, or a proxy that reports its table comes from a file, the
// file is edited; else the admin API's table is replaced, on the condition
// that it has not changed since it was read.
func (a *App) editTable(cmd *cobra.Command, o *routesOpts, edit tableEdit) error {
	cfg, err := a.Config(cmd)
	if err != nil {
		return err
	}
	if cfg.Proxy.RoutesFile != "" {
		return a.editConfiguredFile(cmd.Context(), o, cfg, edit)
	}
	return a.withAdmin(cmd, o, func(ctx context.Context, c *adminclient.Client) error {
		t, err := c.Table(ctx)
		if err != nil {
			return err
		}
		if t.Source == "file" {
			return a.editServedFile(ctx, c, t, cfg, edit)
		}
		return a.editAdminTable(ctx, c, t, cfg, edit)
	})
}

// editServedFile edits the routes file of the proxy behind c, which was
// started with one on its command line, when that file is here too, and
// waits until that proxy has reloaded it.
func (a *App) editServedFile(ctx context.Context, c *adminclient.Client, t *api.Table, cfg *config.Config, edit tableEdit) error {
	if _, err := os.Stat(t.File); err != nil {
		return fmt.Errorf("the proxy's table comes from its routes file %s, which is not here (%v): run the command where the proxy runs, with its --config, or edit the file", t.File, unwrapPathError(err))
	}
	msg, changed, err := editFile(t.File, cfg.Proxy.Legacy, edit)
	if err != nil {
		return err
	}
	return a.reportFileEdit(ctx, c, t, changed, msg+" in "+t.File+", the proxy's routes file")
}

// editConfiguredFile edits the routes file of the config. When a proxy
// that serves that file answers on the config's admin address, it waits
// until the proxy has reloaded it, so that the next command (a shadow of
// the module just given a candidate, say) finds the edit.
func (a *App) editConfiguredFile(ctx context.Context, o *routesOpts, cfg *config.Config, edit tableEdit) error {
	path := cfg.Proxy.RoutesFile
	var c *adminclient.Client
	var before *api.Table
	if cl, _, err := newAdminClient(cfg, o); err == nil {
		// No proxy, or one that serves another table, is not an error:
		// the file is edited all the same, for the proxy that starts on it.
		probe, cancel := context.WithTimeout(ctx, 2*time.Second)
		if t, err := cl.Table(probe); err == nil && t.Source == "file" && sameFile(t.File, path) {
			c, before = cl, t
		}
		cancel()
	}
	msg, changed, err := editFile(path, cfg.Proxy.Legacy, edit)
	if err != nil {
		return err
	}
	return a.reportFileEdit(ctx, c, before, changed, msg+" in "+path)
}

// reloadWait bounds how long an edit of a routes file waits for the
// proxy to reload it; the proxy rereads it 150 ms after it changes.
const reloadWait = 10 * time.Second

// reportFileEdit says what an edit of a routes file did. With c, the
// admin API of a proxy that served the file at table version before.Version,
// and a change to the table, it first waits until that proxy serves a
// newer version.
func (a *App) reportFileEdit(ctx context.Context, c *adminclient.Client, before *api.Table, changed bool, what string) error {
	if c == nil || !changed {
		fmt.Fprintf(a.Stdout, "%s; the proxy reloads the file when it changes\n", what)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, reloadWait)
	defer cancel()
	for {
		t, err := c.Table(ctx)
		if err == nil && t.Version > before.Version {
			fmt.Fprintf(a.Stdout, "%s; the proxy serves it (table version %d)\n", what, t.Version)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s, but the proxy still serves table version %d after %s: its log says why it did not reload the file", what, before.Version, reloadWait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sameFile reports whether paths a and b name one file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// editAdminTable replaces the admin API's table with the edited one, if
// the table is still at the version that was read.
func (a *App) editAdminTable(ctx context.Context, c *adminclient.Client, t *api.Table, cfg *config.Config, edit tableEdit) error {
	var root yaml.Node
	if err := root.Encode(t.Table); err != nil {
		return err
	}
	msg, err := edit(t.Table, &root)
	if err != nil {
		return err
	}
	b, err := marshalYAML(&root)
	if err != nil {
		return err
	}
	if _, err := compileTable(b, cfg.Proxy.Legacy); err != nil {
		return fmt.Errorf("the edited table is not valid, so it was not sent: %w", err)
	}
	doc, err := routes.Parse(b)
	if err != nil {
		return err
	}
	if beforeTableWrite != nil {
		beforeTableWrite()
	}
	nt, err := c.ReplaceTable(ctx, doc, t.Version)
	if adminclient.StatusOf(err) == http.StatusPreconditionFailed {
		return fmt.Errorf("the route table changed (it was at version %d when read) while the edit was made, so the edit was not sent: run the command again", t.Version)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "%s (table version %d)\n", msg, nt.Version)
	for _, w := range nt.Warnings {
		fmt.Fprintf(a.Stdout, "warning: %s\n", w)
	}
	return nil
}

// editFile applies edit to the routes file at path and writes it back
// atomically, with its comments, once the result compiles, unless the file
// changed after it was read. It reports whether the table changed, not
// only its layout.
func editFile(path, legacy string, edit tableEdit) (string, bool, error) {
	// A symlinked file is edited where it is, and the link stays a link.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("routes file: %w", err)
	}
	doc, err := routes.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("routes file %s: %w; fix it first (strangler routes validate %s lists every problem)", path, err, path)
	}
	var file yaml.Node
	if err := yaml.Unmarshal(raw, &file); err != nil {
		return "", false, fmt.Errorf("routes file %s: %w", path, err)
	}
	root := &file
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return "", false, fmt.Errorf("routes file %s: the table is not a mapping", path)
	}
	msg, err := edit(doc, root)
	if err != nil {
		return "", false, err
	}
	out, err := marshalYAML(&file)
	if err != nil {
		return "", false, err
	}
	if _, err := compileTable(out, legacy); err != nil {
		return "", false, fmt.Errorf("the edited table is not valid, so %s is unchanged: %w", path, err)
	}
	// The edit may have changed only the layout (a candidate set again,
	// say), which the proxy does not publish as a new version.
	was, err := routes.Parse(raw)
	if err != nil {
		return "", false, err
	}
	now, err := routes.Parse(out)
	if err != nil {
		return "", false, err
	}
	changed := !reflect.DeepEqual(was, now)
	if beforeTableWrite != nil {
		beforeTableWrite()
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	sum := sha256.Sum256(raw)
	err = writeChecked(path, out, mode, func(string) error {
		now, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if sha256.Sum256(now) != sum {
			return errFileChanged
		}
		return nil
	})
	if errors.Is(err, errFileChanged) {
		return "", false, fmt.Errorf("%s changed while the edit was made, so it was left as it is: run the command again", path)
	}
	return msg, changed, err
}

var errFileChanged = errors.New("the file changed since it was read")

func addModule(name, prefix string, methods []string, candidate string) tableEdit {
	return func(doc *routes.Doc, root *yaml.Node) (string, error) {
		if doc.Module(name) != nil {
			return "", fmt.Errorf("module %q is already in the table; use set-candidate or remove-module", name)
		}
		m := routes.Module{Name: name, Routes: []routes.RouteDef{{ID: routeIDFor(doc, name), Methods: methods, Prefix: prefix}}}
		if candidate != "" {
			b, err := candidateBackend(doc, root, name, candidate)
			if err != nil {
				return "", err
			}
			m.Candidate = b
		}
		var n yaml.Node
		if err := n.Encode(m); err != nil {
			return "", err
		}
		mods := mapValue(root, "modules")
		if mods == nil || mods.Kind != yaml.SequenceNode {
			mods = &yaml.Node{Kind: yaml.SequenceNode}
			setMapValue(root, "modules", mods)
		}
		flowRoutes(root)
		// The new module goes last, or before the catch-all module when
		// that is last, so that it stays last. (Prefix / ranks below every
		// other route wherever it stands; this is for the reader.)
		at := len(mods.Content)
		if n := len(doc.Modules); n > 0 && n == len(mods.Content) && catchAllModule(doc.Modules[n-1]) {
			at = n - 1
		}
		mods.Content = append(mods.Content[:at], append([]*yaml.Node{&n}, mods.Content[at:]...)...)
		for _, r := range mapValue(&n, "routes").Content {
			r.Style = yaml.FlowStyle
		}
		return fmt.Sprintf("module %s added (prefix %s)", name, prefix), nil
	}
}

func setModuleCandidate(name, candidate string) tableEdit {
	return func(doc *routes.Doc, root *yaml.Node) (string, error) {
		i := moduleIndex(doc, name)
		if i < 0 {
			return "", fmt.Errorf("no module %q in the table", name)
		}
		b, err := candidateBackend(doc, root, name, candidate)
		if err != nil {
			return "", err
		}
		m := mapValue(root, "modules").Content[i]
		if mapValue(m, "candidate") == nil && len(m.Content) >= 2 && m.Content[0].Value == "name" {
			// A new candidate goes after the name, as in the hand-written
			// tables.
			m.Content = append(m.Content[:2], append([]*yaml.Node{{Kind: yaml.ScalarNode, Value: "candidate"}, {Kind: yaml.ScalarNode, Value: b}}, m.Content[2:]...)...)
		} else {
			setMapValue(m, "candidate", &yaml.Node{Kind: yaml.ScalarNode, Value: b})
		}
		return fmt.Sprintf("module %s: candidate %s", name, b), nil
	}
}

func removeModule(name string) tableEdit {
	return func(doc *routes.Doc, root *yaml.Node) (string, error) {
		i := moduleIndex(doc, name)
		if i < 0 {
			return "", fmt.Errorf("no module %q in the table", name)
		}
		if len(doc.Modules) == 1 {
			return "", fmt.Errorf("module %q is the table's only module; a table needs one", name)
		}
		mods := mapValue(root, "modules")
		mods.Content = append(mods.Content[:i], mods.Content[i+1:]...)
		return fmt.Sprintf("module %s removed", name), nil
	}
}

// moduleIndex is the position of module name in doc, or -1.
func moduleIndex(doc *routes.Doc, name string) int {
	for i := range doc.Modules {
		if doc.Modules[i].Name == name {
			return i
		}
	}
	return -1
}

// routeIDFor is a route ID for a new module's route that the table does
// not use yet: the module's name, else with a number.
func routeIDFor(doc *routes.Doc, module string) string {
	used := map[string]bool{}
	for _, m := range doc.Modules {
		for _, r := range m.Routes {
			used[r.ID] = true
		}
	}
	id := module
	for i := 2; used[id]; i++ {
		id = fmt.Sprintf("%s-%d", module, i)
	}
	return id
}

// catchAllModule reports whether m has a route that takes every request.
func catchAllModule(m routes.Module) bool {
	for _, r := range m.Routes {
		if (r.Prefix == "/" || r.Prefix == "") && r.Path == "" && r.Host == "" && len(r.Methods) == 0 &&
			len(r.Headers) == 0 && len(r.Query) == 0 && len(r.Cookies) == 0 {
			return true
		}
	}
	return false
}

// candidateBackend returns the backend that serves candidate for module,
// adding it to the table if needed. A base URL is an existing backend with
// that one URL, else the backend <module>-candidate; a name is the backend
// of that name, else a new backend for the registered service of that name.
func candidateBackend(doc *routes.Doc, root *yaml.Node, module, candidate string) (string, error) {
	var name string
	var b routes.Backend
	if strings.Contains(candidate, "://") {
		u, err := routes.ParseBackendURL(candidate)
		if err != nil {
			return "", fmt.Errorf("candidate: %w", err)
		}
		for n, have := range doc.Backends {
			if len(have.URLs) == 1 && have.URLs[0] == u.String() {
				return n, nil
			}
		}
		name, b = module+"-candidate", routes.Backend{URLs: []string{u.String()}}
		for _, m := range doc.Modules {
			if m.Name != module && m.Candidate == name {
				return "", fmt.Errorf("backend %s is also module %s's candidate; name a service, or edit the table", name, m.Name)
			}
		}
	} else {
		if _, ok := doc.Backends[candidate]; ok {
			return candidate, nil
		}
		name, b = candidate, routes.Backend{Service: candidate}
	}
	var n yaml.Node
	if err := n.Encode(b); err != nil {
		return "", err
	}
	n.Style = yaml.FlowStyle
	backends := mapValue(root, "backends")
	if backends == nil || backends.Kind != yaml.MappingNode {
		backends = &yaml.Node{Kind: yaml.MappingNode}
		// The backends come first, as in the hand-written tables, under
		// the file's leading comment, which YAML gives the first key.
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: "backends"}
		if len(root.Content) > 0 {
			key.HeadComment, root.Content[0].HeadComment = root.Content[0].HeadComment, ""
		}
		root.Content = append([]*yaml.Node{key, backends}, root.Content...)
	}
	setMapValue(backends, name, &n)
	return name, nil
}

// renderTable renders a table with header as its leading comment, the
// comment of each module above it and each route on one line, as the
// hand-written tables are.
func renderTable(doc *routes.Doc, header string, comments map[string]string) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(doc); err != nil {
		return nil, err
	}
	n.HeadComment = header
	flowRoutes(&n)
	if mods := mapValue(&n, "modules"); mods != nil {
		for _, m := range mods.Content {
			if name := mapValue(m, "name"); name != nil && comments[name.Value] != "" {
				m.HeadComment = comments[name.Value]
			}
		}
	}
	return marshalYAML(&n)
}

// flowRoutes writes each route of a table node on one line.
func flowRoutes(n *yaml.Node) {
	mods := mapValue(n, "modules")
	if mods == nil {
		return
	}
	for _, m := range mods.Content {
		if rs := mapValue(m, "routes"); rs != nil {
			for _, r := range rs.Content {
				r.Style = yaml.FlowStyle
			}
		}
	}
}

// marshalYAML renders a node with the two-space indent of the hand-written
// files.
func marshalYAML(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// mapValue returns the value of key in the mapping node n (or the mapping
// a document node holds), or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// setMapValue sets key in the mapping node n to v, in place if it is there
// (keeping the key's comments), else at the end.
func setMapValue(n *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v.HeadComment, v.LineComment = n.Content[i+1].HeadComment, n.Content[i+1].LineComment
			n.Content[i+1] = v
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}
