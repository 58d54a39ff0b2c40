package cli

import (
	"encoding/json"
	"fmt"
	"sort"
)

// writeOutput prints v as indented JSON when output is "json", else calls
// text for "text" or "", and refuses any other format as a usage error.
func writeOutput(a *App, output string, v any, text func() error) error {
	switch output {
	case "json":
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		return text()
	}
	return usageError{fmt.Errorf("--output: want text or json, not %q", output)}
}

// sortedKeys returns m's keys in order, for listing what is registered.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
