package arch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/stranglerkit/strangler"

// toolkit lists the toolkit's packages, as go list patterns.
var toolkit = []string{
	module + "/proxy/...", module + "/changefeed/...", module + "/phase/...",
	module + "/config", module + "/db", module + "/httpx", module + "/internal/cli", module + "/saga", module + "/eventsource/...",
}

// shop lists the import path prefixes of the reference shop.
var shop = []string{module + "/monolith", module + "/extracted", module + "/acl"}

// pkg is what the test reads of `go list -json`.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	DepOnly    bool
}

// goList runs `go list -deps -json` on patterns and returns every package
// in the graph by import path, and the import paths the patterns match.
func goList(t *testing.T, patterns ...string) (graph map[string]pkg, roots []string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the architecture test runs go list: %v", err)
	}
	cmd := exec.Command(goTool, append([]string{"list", "-deps", "-json"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph = map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		graph[p.ImportPath] = p
		if !p.DepOnly {
			roots = append(roots, p.ImportPath)
		}
	}
	sort.Strings(roots)
	return graph, roots
}

func isShop(path string) bool {
	for _, s := range shop {
		if path == s || strings.HasPrefix(path, s+"/") {
			return true
		}
	}
	return false
}

// shopDeps lists the shop packages that root depends on, each with the
// packages of the graph that import it directly, to say where the
// dependency comes in.
func shopDeps(graph map[string]pkg, root string) map[string][]string {
	out := map[string][]string{}
	for _, d := range graph[root].Deps {
		if !isShop(d) {
			continue
		}
		for _, via := range append([]string{root}, graph[root].Deps...) {
			if !isShop(via) && contains(graph[via].Imports, d) {
				out[d] = append(out[d], via)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestToolkitImportsNoShop checks that no toolkit package imports the
// shop, directly or through another package, so that the toolkit builds
// and runs for any monolith: the shop plugs itself in from extracted/shop.
func TestToolkitImportsNoShop(t *testing.T) {
	graph, roots := goList(t, append(toolkit, module+"/cmd/strangler")...)
	// Guard against a vacuous pass: the patterns reach the toolkit's
	// packages, and the check finds the shop where it is plugged in.
	for _, want := range []string{"proxy", "proxy/admin", "changefeed/relay", "phase", "config", "db", "httpx", "internal/cli", "saga"} {
		if !contains(roots, module+"/"+want) {
			t.Errorf("go list did not report %s/%s", module, want)
		}
	}
	if len(shopDeps(graph, module+"/cmd/strangler")) == 0 {
		t.Fatal("cmd/strangler shows no dependency on the shop: the check would find nothing")
	}
	for _, root := range roots {
		if root == module+"/cmd/strangler" || isShop(root) {
			continue
		}
		deps := shopDeps(graph, root)
		names := make([]string, 0, len(deps))
		for d := range deps {
			names = append(names, d)
		}
		sort.Strings(names)
		for _, d := range names {
			t.Errorf("toolkit package %s depends on the shop's %s (imported by %s); the shop registers itself from extracted/shop instead",
				strings.TrimPrefix(root, module+"/"), strings.TrimPrefix(d, module+"/"), strings.Join(deps[d], ", "))
		}
	}
}

// TestProxyNeedsNoSharedStore checks that the proxy, its admin API and
// its control plane reach the shared store only through control's
// interfaces (control.Store, control.ReplicaReporter): pgstore is plugged
// in by the CLI, so that another shared store plugs in the same way.
func TestProxyNeedsNoSharedStore(t *testing.T) {
	const pgstore = module + "/proxy/control/pgstore"
	graph, _ := goList(t, module+"/proxy", module+"/proxy/admin", module+"/proxy/control", module+"/internal/cli")
	// Guard against a vacuous pass: the CLI, which plugs it in, does
	// depend on it.
	if !contains(graph[module+"/internal/cli"].Deps, pgstore) {
		t.Fatal("internal/cli shows no dependency on pgstore: the check would find nothing")
	}
	for _, root := range []string{"proxy", "proxy/admin", "proxy/control"} {
		p := graph[module+"/"+root]
		if p.ImportPath == "" {
			t.Fatalf("go list did not report %s", root)
		}
		if contains(p.Deps, pgstore) {
			var via []string
			for _, d := range append([]string{p.ImportPath}, p.Deps...) {
				if contains(graph[d].Imports, pgstore) {
					via = append(via, strings.TrimPrefix(d, module+"/"))
				}
			}
			t.Errorf("%s depends on pgstore (imported by %s); it should need only control's interfaces", root, strings.Join(via, ", "))
		}
	}
}
