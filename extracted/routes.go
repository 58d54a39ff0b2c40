// Package extracted holds the services extracted from the shop monolith,
// one sub-package each, and what ties them to the toolkit: the proxy's
// route table for the shop and the extraction plans.
package extracted

import (
	_ "embed"
	"fmt"

	"github.com/stranglerkit/strangler/proxy/routes"
)

//go:embed routes.yaml
var routesYAML []byte

// Routes returns the proxy's route table for the shop: a module per shop
// module, with inventory's reads and writes in separate modules so that an
// extraction can move them at different phases.
func Routes() (*routes.Doc, error) {
	doc, err := routes.Parse(routesYAML)
	if err != nil {
		return nil, fmt.Errorf("shop route table: %w", err)
	}
	return doc, nil
}

// RoutesYAML returns the table's YAML, to write a routes file from.
func RoutesYAML() []byte { return append([]byte(nil), routesYAML...) }
