// Command strangler runs the Strangler toolkit: the whole system in one
// process (up), each component on its own, and the operator CLI. It plugs
// in the reference shop (its config sections, commands, components and
// defaults) by importing its wiring, as a Caddy main plugs in its modules;
// the toolkit itself imports nothing of the shop.
package main

import (
	"os"

	// The shop registers itself with the toolkit's config and CLI.
	_ "github.com/stranglerkit/strangler/extracted/shop"
	"github.com/stranglerkit/strangler/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
