// Package acltest holds what the anti-corruption layers' tests share:
// reading their golden legacy events from testdata/ and writing times.
package acltest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed"
)

// Event reads the golden event testdata/events/name of the package under
// test.
func Event(t testing.TB, name string) changefeed.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev changefeed.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// At parses an RFC 3339 time written in a test; it panics on a typo,
// which is the test's own defect.
func At(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}
