package config_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/changefeed/backfill"
	"github.com/stranglerkit/strangler/config"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/shop"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// examplePath is the documented example config that users copy.
const examplePath = "../strangler.example.yaml"

// scissors marks the start and the end of a commented-out example block in
// the example config.
const scissors = "# ----8<----"

// noEnv keeps the tests' environment out of the loaded configs.
func noEnv(string) (string, bool) { return "", false }

// loadExample loads the example config on the binary's base.
func loadExample(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{File: examplePath, LookupEnv: noEnv, Base: shop.Defaults})
	if err != nil {
		t.Fatalf("load %s: %v", examplePath, err)
	}
	return cfg
}

// TestExampleLoadsWithDefaults checks that the example config loads, and
// that every value it shows is the default it claims to be: it must print
// the same effective config as no file at all.
func TestExampleLoadsWithDefaults(t *testing.T) {
	ex := loadExample(t)
	def, err := config.Load(config.LoadOptions{LookupEnv: noEnv, Base: shop.Defaults})
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	// Compared as printed, where a nil list and an empty one are both [].
	exY, err := ex.YAML()
	if err != nil {
		t.Fatal(err)
	}
	defY, err := def.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if string(exY) != string(defY) {
		t.Fatalf("the example's values are not the defaults (effective config, example vs default):\n%s", diffLines(string(exY), string(defY)))
	}
	if _, ok := ex.Backfill.Job("inventory-stock"); !ok {
		t.Fatalf("the example has no backfill job inventory-stock: %+v", ex.Backfill)
	}
}

// TestExampleCoversEveryKey walks the Config struct by reflection and checks
// that the example config, counting its commented-out example blocks, shows
// every YAML key, and no key the struct does not have. A setting added to
// any section without its documented line here fails this test.
func TestExampleCoversEveryKey(t *testing.T) {
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]byte{"the file": raw}
	for i, block := range commentedBlocks(t, string(raw)) {
		name := fmt.Sprintf("commented example %d", i+1)
		docs[name] = []byte(block)
		// A commented example must load as it stands once uncommented.
		p := filepath.Join(t.TempDir(), "block.yaml")
		if err := os.WriteFile(p, []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(config.LoadOptions{File: p, LookupEnv: noEnv, Base: shop.Defaults}); err != nil {
			t.Errorf("%s does not load: %v\n%s", name, err, block)
		}
	}
	if len(docs) < 2 {
		t.Fatalf("the example has no commented-out block between %q lines; the verify check example is missing", scissors)
	}

	want := map[string]bool{}
	structKeys(config.Schema(), "", want)
	seen := map[string]bool{}
	for name, doc := range docs {
		var n yaml.Node
		if err := yaml.Unmarshal(doc, &n); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(n.Content) == 0 {
			t.Fatalf("%s is empty", name)
		}
		var unknown []string
		yamlKeys(n.Content[0], config.Schema(), "", seen, &unknown)
		for _, k := range unknown {
			t.Errorf("%s: key %s is not a setting of the Config struct", name, k)
		}
	}
	var missing []string
	for k := range want {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		t.Errorf("%s does not show %s: add it with its default and a comment", examplePath, k)
	}
	if len(want) < 50 {
		t.Fatalf("the struct walk found only %d keys; it is not reaching the sections", len(want))
	}
}

// TestExampleBackfillJobRuns runs the example's backfill job against the
// seeded shop, so that the job stays true to the inventory's schema and to
// its live events: one snapshot event per stock level, keyed like the live
// events, with the live events' fields.
func TestExampleBackfillJobRuns(t *testing.T) {
	job, _ := loadExample(t).Backfill.Job("inventory-stock")
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed())
		ctx := context.Background()
		res, err := backfill.Run(ctx, job, backfill.Options{DB: shop.DB(), Logger: httpx.Discard})
		if err != nil {
			t.Fatalf("backfill: %v", err)
		}
		var levels int64
		if err := shop.DB().Raw(`SELECT count(*) FROM inv_stock`).Scan(&levels).Error; err != nil {
			t.Fatal(err)
		}
		if levels < 100 || res.Rows != levels || res.Events != levels || !res.Done {
			t.Fatalf("backfill = %+v, want all %d stock levels as events and done", res, levels)
		}

		const key = "P-000001/AMS1"
		payload := func(eventType string) map[string]any {
			t.Helper()
			var s string
			err := shop.DB().Raw(`SELECT payload FROM outbox WHERE aggregatetype = ? AND aggregateid = ? AND type = ? ORDER BY seq DESC LIMIT 1`,
				job.AggregateType, key, eventType).Scan(&s).Error
			if err != nil || s == "" {
				t.Fatalf("no %s event for %s: %v", eventType, key, err)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				t.Fatalf("%s payload %s: %v", eventType, s, err)
			}
			return m
		}
		snap, live := payload(job.EventType), payload("stock.adjusted")
		delete(live, "movement")
		if got, want := sortedKeys(snap), sortedKeys(live); !reflect.DeepEqual(got, want) {
			t.Fatalf("snapshot fields %v, want the live event's %v", got, want)
		}
		for _, f := range []string{"product_ref", "warehouse", "on_hand", "reserved", "qty_available", "version"} {
			if jsonText(snap[f]) != jsonText(live[f]) {
				t.Errorf("%s: snapshot %v, live %v", f, snap[f], live[f])
			}
		}
	})
}

// commentedBlocks returns the YAML of each commented-out block between two
// scissors lines, uncommented.
func commentedBlocks(t *testing.T, s string) []string {
	t.Helper()
	var blocks []string
	var cur []string
	in := false
	for i, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == scissors {
			if in {
				blocks = append(blocks, strings.Join(cur, "\n")+"\n")
				cur = nil
			}
			in = !in
			continue
		}
		if !in {
			continue
		}
		switch {
		case line == "#":
			cur = append(cur, "")
		case strings.HasPrefix(line, "# "):
			cur = append(cur, strings.TrimPrefix(line, "# "))
		default:
			t.Fatalf("%s:%d: a line between scissors is not commented out: %q", examplePath, i+1, line)
		}
	}
	if in {
		t.Fatalf("%s: a %q line has no partner", examplePath, scissors)
	}
	return blocks
}

// structKeys adds the dotted YAML path of every field of t to keys,
// descending into structs and into the elements of slices of structs, as
// the YAML does. Maps are values, not settings: their keys are data.
func structKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := config.YAMLName(sf)
		if !sf.IsExported() || name == "-" {
			continue
		}
		path := join(prefix, name)
		keys[path] = true
		if ft := nested(sf.Type); ft != nil {
			structKeys(ft, path, keys)
		}
	}
}

// yamlKeys marks in seen the path of every key of the YAML node n, which
// sets a value of type t, and lists in unknown the keys t does not have.
func yamlKeys(n *yaml.Node, t reflect.Type, prefix string, seen map[string]bool, unknown *[]string) {
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			yamlKeys(c, t, prefix, seen, unknown)
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	byName := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		byName[config.YAMLName(t.Field(i))] = t.Field(i)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		path := join(prefix, k)
		sf, ok := byName[k]
		if !ok {
			*unknown = append(*unknown, path)
			continue
		}
		seen[path] = true
		if ft := nested(sf.Type); ft != nil {
			yamlKeys(v, ft, path, seen, unknown)
		}
	}
}

// nested returns the struct type whose keys a field of type t holds in YAML,
// for a struct or a slice of structs, and nil for a value.
func nested(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		return t
	}
	return nil
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// diffLines shows the lines where two printed configs differ, with the
// line before each for context; printed configs of the same shape differ
// line by line.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al) != len(bl) {
		return "example:\n" + a + "\ndefaults:\n" + b
	}
	var out strings.Builder
	for i := range al {
		if al[i] != bl[i] {
			if i > 0 {
				fmt.Fprintf(&out, "  %s\n", al[i-1])
			}
			fmt.Fprintf(&out, "- %s\n+ %s\n", al[i], bl[i])
		}
	}
	return out.String()
}
