// Command moddoc prints docs/modules.md, the shop's module map, to standard
// output. `make docs` runs it from the repository root:
//
//	go run ./monolith/internal/cmd/moddoc > docs/modules.md
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/internal/moddoc"
)

func main() {
	mods, err := moddoc.Build(monolith.Dependencies, monolith.ModuleMigrations(), func(module string) ([]byte, error) {
		return os.ReadFile(filepath.Join("monolith", module, "module.go"))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "moddoc:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(moddoc.Render(mods)); err != nil {
		fmt.Fprintln(os.Stderr, "moddoc:", err)
		os.Exit(1)
	}
}
