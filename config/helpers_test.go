package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/monolith"
)

func reflectValue(v any) reflect.Value { return reflect.ValueOf(v) }

func yamlMarshal(n *yaml.Node) ([]byte, error) { return yaml.Marshal(n) }

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// monolithSection is the shop monolith's section, which the shop's wiring
// registers: the external tests of this package import it (example_test.go),
// so these tests load a program's section through the same layers as the
// core ones.
var monolithSection = Key[monolith.Config]{name: "monolith"}
