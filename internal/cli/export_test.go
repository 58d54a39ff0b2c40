package cli

// The external tests (package cli_test) run the command line with the shop
// plugged in, as cmd/strangler does, through these.
var (
	RunCLI     = runCLI
	Isolate    = isolate
	ServeParts = serveParts
)
