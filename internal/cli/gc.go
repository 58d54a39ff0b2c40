package cli

import (
	"runtime/debug"
)

// The garbage collector's defaults for the strangler process, which the
// GOGC and GOMEMLIMIT environment variables override. The components keep
// a small live heap (tens of MB) and allocate per request, so that with
// Go's GOGC of 100 the collector ran several times a second under load and
// took about 13% of the monolith's CPU on the order path. A GOGC of 400
// lets the heap grow to five times the live data between collections; the
// memory limit makes the collector run earlier again should the heap near
// it, so that the higher GOGC never costs more memory than that.
const (
	defaultGOGC     = 400
	defaultMemLimit = 1 << 30 // 1 GiB
)

// tuneGC sets the defaults above, each unless the environment (getenv)
// sets it, in which case the runtime has applied that already: GOGC=100
// restores Go's own, GOMEMLIMIT=off removes the limit.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemLimit)
	}
}
