// Package migrations embeds every golang-migrate SQL set: one per monolith
// module under monolith/<module>/, one per extracted service, one per
// anti-corruption layer that keeps tables (orders-acl/), the change-data
// tables and the event store's (eventsource/), each with a directory per
// dialect, sqlite/ and postgres/, holding the same versions; the shared
// control store's set under control/, which has postgres/ only (see
// control/README.md); and the saga sets: saga/ (the orchestrator's log)
// and sagaguard/ (a participant's idempotency keys).
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed monolith changefeed inventory control saga sagaguard eventsource orders orders-acl
var files embed.FS

// FS returns the set at dir, such as "monolith/catalog". It panics on a
// directory that is not embedded, which is a programming error caught by
// any test that migrates.
func FS(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic("migrations: " + err.Error())
	}
	if _, err := fs.Stat(sub, "."); err != nil {
		panic("migrations: no set " + dir)
	}
	return sub
}
