// Package control is the proxy's control state: what the route table is
// computed from (the table, module overrides), the modules' phases, the
// audit log and the service registry, as a Store persists them.
//
// A Store is the one place this state lives. The embedded one
// (control/filestore) keeps it in the proxy's state dir for a single
// proxy; a shared one lets several proxies agree, which is why saves are
// optimistic: a change is based on the revision it read, and a Save
// against a newer one fails with ErrConflict, so that the caller loads
// again and redoes the change. control/storetest is the contract every
// Store passes.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// State is the versioned document a Store keeps: the table that serves,
// the module overrides on top of a routes file, and the phases.
type State struct {
	// Revision counts the saves of the document. Load sets it; Save
	// stores a State only if the stored revision is still this one, and
	// then sets it to the new revision. It is the store's concurrency
	// token, apart from Version, which a phase change leaves alone.
	Revision int64 `json:"revision,omitempty"`
	// Version is the route table's version, the admin API's ETag.
	Version   int64       `json:"version"`
	UpdatedAt time.Time   `json:"updated_at"`
	UpdatedBy string      `json:"updated_by"`
	Table     *routes.Doc `json:"table,omitempty"`
	// Overrides are module-wide modes set through the admin API on top of
	// a routes file, by module.
	Overrides map[string]Override `json:"overrides,omitempty"`
	// Phases are the modules' extraction phases, by module.
	Phases map[string]api.PhaseState `json:"phases,omitempty"`
}

// Override is a module-wide mode set through the admin API on top of a
// routes file. It records the file's setting when it was made: a later
// edit of that setting in the file wins over the override.
type Override struct {
	Mode       routes.Mode `json:"mode"`
	Weight     int         `json:"weight"`
	BaseMode   routes.Mode `json:"base_mode"`
	BaseWeight int         `json:"base_weight"`
}

// ErrConflict is what Save's error wraps (see ConflictError) when the
// stored state is newer than the one the change was based on.
var ErrConflict = errors.New("the stored state changed since it was read")

// ConflictError is a Save that lost a race: Base is the revision the
// change was based on, Stored the revision in the store.
type ConflictError struct{ Base, Stored int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: based on revision %d, stored %d", ErrConflict, e.Base, e.Stored)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// AuditQuery asks for a page of the audit log, newest first.
type AuditQuery struct {
	// Module keeps the entries of one module and the table-wide entries
	// that changed it. If empty, every entry.
	Module string
	// Limit is the most entries on the page; it must be positive.
	Limit int
	// Before is the cursor of the previous page. If zero, the newest
	// entries.
	Before int64
}

// AuditPage is a page of the audit log: its entries, newest first, and
// the cursor of the next page, zero when there is none. A page may hold
// fewer than its limit while Next is not zero: a store bounds the work
// one page takes.
type AuditPage struct {
	Entries []api.AuditEntry
	Next    int64
}

// Instance is a registered instance of a service and when its
// registration ends unless renewed.
type Instance struct {
	URL       string
	ExpiresAt time.Time
}

// Store keeps the control state. Its methods are safe for concurrent use.
type Store interface {
	// Load returns the newest saved state, or nil when none was ever
	// saved.
	Load(ctx context.Context) (*State, error)
	// Save stores st as the newest state if the stored revision is
	// st.Revision (zero: nothing saved yet), and sets st.Revision to the
	// new one. Otherwise it stores nothing and returns a *ConflictError.
	Save(ctx context.Context, st *State) error
	// Changed delivers a value when another writer has saved a state,
	// for the proxy to load it. A store with one writer returns nil,
	// which never delivers.
	Changed() <-chan struct{}

	// AppendAudit adds an entry to the audit log.
	AppendAudit(ctx context.Context, e api.AuditEntry) error
	// Audit reads a page of the audit log.
	Audit(ctx context.Context, q AuditQuery) (AuditPage, error)

	// Register adds or renews an instance of service for ttl and reports
	// whether it was not registered before.
	Register(ctx context.Context, service, url string, ttl time.Duration) (created bool, err error)
	// Deregister removes an instance and reports whether it was
	// registered.
	Deregister(ctx context.Context, service, url string) (bool, error)
	// Instances lists every service's unexpired instances, by service,
	// each sorted by URL. A service without one is left out.
	Instances(ctx context.Context) (map[string][]Instance, error)

	// AddUsage adds deltas to the traffic inventory (see Usage): counts
	// add up, methods join, the last-seen times keep the later. A route
	// keeps up to MaxUsageTemplates templates; the requests of others
	// count in its OtherTemplate row. Several replicas add to one store.
	AddUsage(ctx context.Context, deltas []Usage) error
	// Usage lists the traffic inventory, sorted by module, route and
	// template.
	Usage(ctx context.Context) ([]Usage, error)

	// Close releases the store.
	Close() error
}

// Touches reports whether a table-wide audit entry (one without a module)
// changed module, by comparing the module's summary before and after: the
// audit log's module filter keeps such entries.
func Touches(e api.AuditEntry, module string) bool {
	if e.Module != "" {
		return false
	}
	var before, after map[string]json.RawMessage
	_ = json.Unmarshal(e.Before, &before)
	_ = json.Unmarshal(e.After, &after)
	return !bytes.Equal(before[module], after[module])
}

// RevisionReader is a Store that reads its stored revision alone, much
// cheaper than a Load of the whole state: a replica's safety-net poll
// reads the revision, and loads only when it is newer than the one that
// serves. An extra interface, found with a type assertion on a Store.
type RevisionReader interface {
	// Revision is the stored state's revision, 0 when nothing was saved.
	Revision(ctx context.Context) (int64, error)
}
