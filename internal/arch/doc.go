// Package arch holds the toolkit's architecture tests: the toolkit (proxy,
// changefeed, phase, config, db, httpx and the CLI's commands) stands apart
// from the reference shop (monolith, extracted, acl), which plugs itself in
// from extracted/shop, and works without it. The monolith's own module
// boundaries are checked by monolith/internal/arch.
package arch
