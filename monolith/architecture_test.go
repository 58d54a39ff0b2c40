package monolith_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/internal/arch"
)

const monolithPath = "github.com/stranglerkit/strangler/monolith"

// archRules are the monolith's boundaries: the modules and their allowed
// dependencies from monolith.Dependencies, and the packages that wire them.
var archRules = arch.Rules{
	Root:         monolithPath,
	Dependencies: monolith.Dependencies,
	Wiring:       []string{"", "shoptest", "internal/cmd/..."},
}

// goList runs `go list -deps -json` on the monolith's packages and returns
// those of the monolith.
func goList(t *testing.T) []arch.Package {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the architecture test runs go list: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json", monolithPath+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []arch.Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p arch.Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.ImportPath == monolithPath || strings.HasPrefix(p.ImportPath, monolithPath+"/") {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

func TestArchitecture(t *testing.T) {
	pkgs := goList(t)
	// Guard against a vacuous pass: every module and its internals must be
	// in the graph.
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[strings.TrimPrefix(p.ImportPath, monolithPath+"/")] = true
	}
	for m := range monolith.Dependencies {
		for _, want := range []string{m, m + "/internal/service", m + "/internal/store", m + "/internal/httpapi", m + "/internal/domain"} {
			if !seen[want] {
				t.Errorf("go list did not report %s", want)
			}
		}
	}
	for _, v := range arch.Check(archRules, pkgs) {
		t.Error(v)
	}
	violations, err := arch.CheckAPIUse(archRules, pkgs, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Error(v)
	}
}
