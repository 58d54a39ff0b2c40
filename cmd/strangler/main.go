// Command strangler runs the Strangler toolkit: the whole system in one
// process (up), each component on its own, and the operator CLI.
package main

import (
	"os"

	"github.com/stranglerkit/strangler/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
