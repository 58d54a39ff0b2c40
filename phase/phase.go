// Package phase names the steps of one module's extraction and says what
// each step changes, so that an operator moves a module from the monolith
// to its service one safe, reversible step at a time:
//
//	0 legacy    the monolith serves the module
//	1 sync      the service's copy is backfilled and follows the monolith's events
//	2 shadow    reads are copied to the service and the answers compared
//	3 canary    a sticky share of reads is served by the service
//	4 flip      the service owns writes; its events flow back to the monolith
//	5 retire    the monolith's write path is switched off
//
// The current phase of each module is held by the proxy's admin API, the
// control plane that the CLI, the proxy and the components share: it is
// persisted and audited there, and components that must change behaviour
// at a phase (a service that starts taking writes, a monolith that starts
// calling the service) watch it and acknowledge each phase they applied.
// Nothing here knows a particular monolith: a Module names the proxy
// modules, backfill jobs, verify check and consumer groups of one
// extraction.
package phase

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Phase is a step of an extraction.
type Phase int

// The phases, in order.
const (
	Legacy Phase = iota
	Sync
	Shadow
	Canary
	Flip
	Retire
)

var names = [...]string{"legacy", "sync", "shadow", "canary", "flip", "retire"}

// String returns the phase's name.
func (p Phase) String() string {
	if p.Valid() {
		return names[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// Valid reports whether p is one of the phases.
func (p Phase) Valid() bool { return p >= Legacy && p <= Retire }

// ErrUnknown is returned by Parse for a name or number that is no phase.
var ErrUnknown = errors.New("unknown phase")

// Parse reads a phase by name ("canary") or number ("3").
func Parse(s string) (Phase, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		if p := Phase(n); p.Valid() {
			return p, nil
		}
		return 0, fmt.Errorf("%w %q: want 0 to 5 or one of %s", ErrUnknown, s, strings.Join(names[:], ", "))
	}
	for i, n := range names {
		if n == s {
			return Phase(i), nil
		}
	}
	return 0, fmt.Errorf("%w %q: want 0 to 5 or one of %s", ErrUnknown, s, strings.Join(names[:], ", "))
}

// Config is the "phases" section of the config: the extractions the
// operator drives with `strangler phase` and watches with `strangler
// status`.
type Config struct {
	// Modules lists the extractions.
	Modules []Module `yaml:"modules"`
}

// Module describes one extraction in the toolkit's terms.
type Module struct {
	// Name is the module, as `strangler phase NAME` and `strangler status
	// NAME` take it.
	Name string `yaml:"name"`
	// ReadRoutes is the proxy module whose routes carry the module's reads:
	// shadowed in phase 2, canaried in phase 3, flipped in phase 4. If
	// empty, Name.
	ReadRoutes string `yaml:"read_routes"`
	// WriteRoutes is the proxy module whose routes carry the module's
	// writes, flipped in phase 4. If empty, the module's writes are routed
	// with its reads.
	WriteRoutes string `yaml:"write_routes"`
	// Backfill lists the backfill jobs that phase 1 runs, in order.
	Backfill []string `yaml:"backfill"`
	// Verify names the verify check that compares the two copies.
	Verify string `yaml:"verify"`
	// SyncGroup is the Kafka consumer group that keeps the service's copy
	// in step; `strangler status` reports its lag as the sync lag.
	SyncGroup string `yaml:"sync_group"`
	// SyncAggregates are the aggregate types whose topics
	// (<kafka.topic_prefix>.<aggregate>) SyncGroup follows. If empty,
	// none; sync_group needs at least one.
	SyncAggregates []string `yaml:"sync_aggregates"`
	// BackSyncGroup is the Kafka consumer group that, from the flip on,
	// applies the service's events to the monolith's tables (the back
	// sync). A rollback below the flip sends the writes back to the
	// monolith, waits until this group has committed every event
	// published by then, and only then sends the reads back, so that the
	// monolith answers none from tables that miss the service's last
	// writes; `strangler status` reports its lag. If empty, a rollback
	// does not wait.
	BackSyncGroup string `yaml:"back_sync_group"`
	// BackSyncAggregates are the aggregate types whose topics
	// (<kafka.topic_prefix>.<aggregate>) BackSyncGroup follows. If empty,
	// none; back_sync_group needs at least one.
	BackSyncAggregates []string `yaml:"back_sync_aggregates"`
	// Components lists the components that must acknowledge a phase before
	// the proxy moves traffic for it, such as "monolith" and
	// "inventory-service". If empty, none are waited for.
	Components []string `yaml:"components"`
}

// SetDefaults fills each module's empty fields.
func (c *Config) SetDefaults(string) {
	for i := range c.Modules {
		if c.Modules[i].ReadRoutes == "" {
			c.Modules[i].ReadRoutes = c.Modules[i].Name
		}
	}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Validate reports every invalid field, as modules[i].field.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, m := range c.Modules {
		if !nameRE.MatchString(m.Name) {
			errs = append(errs, fmt.Errorf("modules[%d].name: %q: want a lower-case name", i, m.Name))
		}
		if seen[m.Name] {
			errs = append(errs, fmt.Errorf("modules[%d].name: %q is listed twice", i, m.Name))
		}
		seen[m.Name] = true
		if m.ReadRoutes != "" && m.ReadRoutes == m.WriteRoutes {
			errs = append(errs, fmt.Errorf("modules[%d].write_routes: %q is also read_routes; leave it empty to route writes with reads", i, m.WriteRoutes))
		}
		if m.SyncGroup != "" && len(m.SyncAggregates) == 0 {
			errs = append(errs, fmt.Errorf("modules[%d].sync_aggregates: sync_group %q needs the aggregate types it follows", i, m.SyncGroup))
		}
		if m.BackSyncGroup != "" && len(m.BackSyncAggregates) == 0 {
			errs = append(errs, fmt.Errorf("modules[%d].back_sync_aggregates: back_sync_group %q needs the aggregate types it follows", i, m.BackSyncGroup))
		}
	}
	return errors.Join(errs...)
}

// Find returns the extraction called name.
func (c Config) Find(name string) (Module, bool) {
	for _, m := range c.Modules {
		if m.Name == name {
			return m, true
		}
	}
	return Module{}, false
}

// Routing is what the proxy serves for a module in a phase.
type Routing struct {
	// Reads is the read routes' mode: legacy, shadow, canary or extracted.
	Reads string
	// Weight is the canary weight of reads.
	Weight int
	// Writes is the write routes' mode: legacy or extracted.
	Writes string
}

// RoutingFor returns the routing of phase p; weight is the canary weight
// in phase 3 (10 when zero).
func RoutingFor(p Phase, weight int) Routing {
	switch p {
	case Shadow:
		return Routing{Reads: "shadow", Writes: "legacy"}
	case Canary:
		if weight <= 0 {
			weight = 10
		}
		return Routing{Reads: "canary", Weight: weight, Writes: "legacy"}
	case Flip, Retire:
		return Routing{Reads: "extracted", Writes: "extracted"}
	}
	return Routing{Reads: "legacy", Writes: "legacy"}
}

// ToCandidate reports whether r sends the reads or the writes, or copies
// of the reads, to the service's backend: in phases 2 to 5. Before the
// proxy routes such a phase, that backend needs an instance to serve it.
func (r Routing) ToCandidate() (reads, writes bool) {
	return r.Reads != "legacy", r.Writes != "legacy"
}
