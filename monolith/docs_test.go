package monolith_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/internal/moddoc"
)

// TestModulesDocIsCurrent fails when docs/modules.md no longer matches the
// modules' declared dependencies and migrations.
func TestModulesDocIsCurrent(t *testing.T) {
	mods, err := moddoc.Build(monolith.Dependencies, monolith.ModuleMigrations(), func(module string) ([]byte, error) {
		return os.ReadFile(filepath.Join(module, "module.go"))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := moddoc.Render(mods)
	got, err := os.ReadFile(filepath.Join("..", "docs", "modules.md"))
	if err != nil {
		t.Fatalf("%v; run `make docs`", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/modules.md is stale; run `make docs`. It should read:\n%s", want)
	}
}
