// Package chaostest is the reporting side of Strangler's adversarial suite:
// the tests named TestChaos* that attack the front door as a hostile client
// or a failing machine would. Each case reports what it tried, what it
// expected and what it saw, so that `make chaos` reads as a record of the
// attacks and their outcomes rather than a list of passed test names.
package chaostest

import (
	"fmt"
	"testing"
)

// Report logs one attack's outcome, and fails t when ok is false. Tried says
// what was done, expected what a sound front door answers, and saw what it
// answered.
func Report(t testing.TB, ok bool, tried, expected, saw string) {
	t.Helper()
	verdict := "ok"
	if !ok {
		verdict = "FAILED"
	}
	line := fmt.Sprintf("chaos %s: tried %s; expected %s; saw %s", verdict, tried, expected, saw)
	if ok {
		t.Log(line)
		return
	}
	t.Error(line)
}

// Skipf skips t with the reason that the attack needs a part the machine
// lacks (root for a tmpfs, prlimit), so that the skip is reported and never
// mistaken for a pass.
func Skipf(t testing.TB, tried, format string, args ...any) {
	t.Helper()
	t.Skipf("chaos skipped: tried %s; %s", tried, fmt.Sprintf(format, args...))
}
