// Package api holds the types of the proxy's admin API, shared by the
// server in package proxy and the Go client in proxy/adminclient.
package api

import (
	"encoding/json"
	"time"

	"github.com/stranglerkit/strangler/proxy/jsondiff"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// HeaderActor names who makes a change, for the audit log. The CLI sends
// $USER@host; without it, the audit names the token.
const HeaderActor = "X-Strangler-Actor"

// Table is the route table that serves, with its version.
type Table struct {
	// Version increases with every change.
	Version int64 `json:"version"`
	// Source says where the table comes from: "file" (routes_file, with
	// module overrides from the admin API), "state" (the admin API) or
	// "default" (one catch-all route to legacy).
	Source string `json:"source"`
	// File is the routes file, when Source is "file".
	File string `json:"file,omitempty"`
	// UpdatedAt and UpdatedBy describe the last change.
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
	// Table is the effective table.
	Table *routes.Doc `json:"table"`
	// Warnings name what in the table is valid but likely a mistake, such
	// as no catch-all route, so that requests outside its routes get 404.
	Warnings []string `json:"warnings,omitempty"`
	// DormantOverrides are module operations made on top of the routes
	// file for modules the file no longer has. Each applies again when its
	// module returns to the file with the mode it had.
	DormantOverrides map[string]ModeOverride `json:"dormant_overrides,omitempty"`
}

// Module is one module's state: what the migration status needs in one read.
type Module struct {
	Name      string      `json:"name"`
	Mode      routes.Mode `json:"mode"`
	Weight    int         `json:"weight"`
	Legacy    string      `json:"legacy"`
	Candidate string      `json:"candidate,omitempty"`
	// Fallback is the module's fallback policy: all, safe or none.
	Fallback  routes.Fallback `json:"fallback"`
	Routes    []Route         `json:"routes"`
	Shadow    ShadowStats     `json:"shadow"`
	Fallbacks int64           `json:"fallbacks"`
	Version   int64           `json:"table_version"`
	Override  *ModeOverride   `json:"override,omitempty"`
}

// ModeOverride is a module-wide change made through the admin API on top of
// a routes file.
type ModeOverride struct {
	Mode   routes.Mode `json:"mode"`
	Weight int         `json:"weight"`
}

// Route is one route of a module.
type Route struct {
	ID     string      `json:"id"`
	Match  string      `json:"match"`
	Mode   routes.Mode `json:"mode"`
	Weight int         `json:"weight"`
}

// ShadowStats counts shadow copies and their comparisons.
type ShadowStats struct {
	// Compared copies, and how they compared.
	Compared   int64 `json:"compared"`
	Matches    int64 `json:"matches"`
	Mismatches int64 `json:"mismatches"`
	// Noise counts answers whose only differences were noise: fields that
	// also differ between two legacy answers.
	Noise int64 `json:"noise"`
	// Settled counts mismatches that were gone when legacy and the
	// candidate were asked again (shadow.recheck) while legacy's answer
	// stayed the same: the candidate lagged.
	Settled int64 `json:"settled"`
	// Inconclusive counts mismatches whose recheck found legacy's own
	// answer changed, such as a resource deleted meanwhile: the copy
	// proves neither a match nor a mismatch.
	Inconclusive int64 `json:"inconclusive"`
	// Errors counts copies the candidate did not answer.
	Errors int64 `json:"errors"`
	// Dropped counts copies not sent: the queue or the candidate's share
	// of it was full, the candidate's breaker was open, the body was over
	// the cap, the request could not be sent again, or the proxy stopped.
	Dropped int64 `json:"dropped"`
	// MismatchRate is Mismatches / Compared.
	MismatchRate float64 `json:"mismatch_rate"`
}

// Add adds o's counts to s, for a module's sum over its routes, and
// recomputes MismatchRate.
func (s *ShadowStats) Add(o ShadowStats) {
	s.Compared += o.Compared
	s.Matches += o.Matches
	s.Mismatches += o.Mismatches
	s.Noise += o.Noise
	s.Settled += o.Settled
	s.Inconclusive += o.Inconclusive
	s.Errors += o.Errors
	s.Dropped += o.Dropped
	s.MismatchRate = 0
	if s.Compared > 0 {
		s.MismatchRate = float64(s.Mismatches) / float64(s.Compared)
	}
}

// Diffs is a module's shadow comparison report.
type Diffs struct {
	Module string       `json:"module"`
	Routes []RouteDiffs `json:"routes"`
}

// RouteDiffs is one route's comparisons.
type RouteDiffs struct {
	Route string      `json:"route"`
	Stats ShadowStats `json:"stats"`
	// Noise lists the JSON paths learned to be noise.
	Noise []string `json:"noise"`
	// Samples are the latest mismatches, newest first.
	Samples []Sample `json:"samples"`
}

// Sample is one mismatch.
type Sample struct {
	Time            time.Time             `json:"time"`
	RequestID       string                `json:"request_id"`
	Method          string                `json:"method"`
	URI             string                `json:"uri"`
	LegacyStatus    int                   `json:"legacy_status"`
	CandidateStatus int                   `json:"candidate_status"`
	Differences     []jsondiff.Difference `json:"differences"`
}

// AuditEntry is one change of the table.
type AuditEntry struct {
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Module  string          `json:"module,omitempty"`
	Version int64           `json:"version"`
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
	Detail  string          `json:"detail,omitempty"`
}

// Register is the body of a service instance's registration or heartbeat.
type Register struct {
	// URL is the instance's base URL.
	URL string `json:"url"`
	// TTLSeconds is how long the registration lasts without a heartbeat.
	// If zero, 30.
	TTLSeconds int `json:"ttl_seconds,omitempty"`
}

// Service lists a service's registered instances.
type Service struct {
	Name      string               `json:"name"`
	Instances []RegisteredInstance `json:"instances"`
}

// RegisteredInstance is one registration.
type RegisteredInstance struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Replica is what one proxy replica serves, as it last reported it: the
// admin API lists every live replica of a shared control store, so that
// an operator sees one that lags.
type Replica struct {
	// Name is the replica's host and admin address.
	Name string `json:"name"`
	// Version and Revision are the table version and the store revision
	// it serves; zero while it has no table.
	Version  int64 `json:"version"`
	Revision int64 `json:"revision"`
	// Degraded says it has not read the store for longer than
	// control.stale_after and serves its last good table.
	Degraded bool `json:"degraded"`
	// StalenessSeconds is the time since it last read the store, when it
	// reported.
	StalenessSeconds float64 `json:"staleness_seconds"`
	// ReportedAt is when it last reported, by the store's clock.
	ReportedAt time.Time `json:"reported_at"`
	// Backends are the backends of the table it serves with their
	// instance counts, so that `strangler phase` sends traffic to a
	// candidate only once every replica can serve it. It is nil (JSON
	// null) when the replica's report does not say, as an older proxy's
	// does not, and a list, maybe empty, when it does.
	Backends []BackendHealth `json:"backends"`
}

// BackendHealth counts one backend's instances as a proxy replica sees
// them.
type BackendHealth struct {
	Name string `json:"name"`
	// Service is the registry service the backend follows, if any.
	Service string `json:"service,omitempty"`
	// Instances is how many instances the backend has: its URLs, or the
	// service's live registrations that the replica has picked up.
	Instances int `json:"instances"`
	// Healthy is how many of them the replica would send a request to now
	// (not failing their health checks, not ejected) and, when the backend
	// has an active health check, that passed at least one probe.
	Healthy int `json:"healthy"`
}

// Backend is a backend's state.
type Backend struct {
	Name      string           `json:"name"`
	Service   string           `json:"service,omitempty"`
	Breaker   string           `json:"breaker"`
	Instances []InstanceStatus `json:"instances"`
}

// InstanceStatus is one instance of a backend.
type InstanceStatus struct {
	URL          string `json:"url"`
	Healthy      bool   `json:"healthy"`
	EjectedUntil string `json:"ejected_until,omitempty"`
	InFlight     int64  `json:"in_flight"`
}

// PhaseState is one module's extraction phase (see package phase), held by
// the admin API so that the CLI and every component read the same one.
type PhaseState struct {
	Module string `json:"module"`
	// Phase is 0 (legacy) to 5 (retire); Name is its name.
	Phase int    `json:"phase"`
	Name  string `json:"name"`
	// Weight is the canary weight of reads in phase 3.
	Weight int `json:"weight,omitempty"`
	// Since and By say when and by whom the phase was set.
	Since time.Time `json:"since"`
	By    string    `json:"by,omitempty"`
	// Acks maps each component that watches the phase to the last phase
	// it applied.
	Acks map[string]int `json:"acks,omitempty"`
	// Verify is the last verify result recorded for the module.
	Verify *VerifyResult `json:"verify,omitempty"`
}

// SetPhase is the body of a phase change.
type SetPhase struct {
	Phase  int `json:"phase"`
	Weight int `json:"weight,omitempty"`
}

// Ack is the body of a component's acknowledgement of a phase.
type Ack struct {
	Phase int `json:"phase"`
}

// VerifyResult is a verify run's outcome, as `strangler status` shows it.
type VerifyResult struct {
	Check   string    `json:"check"`
	Time    time.Time `json:"time"`
	Drift   bool      `json:"drift"`
	Summary string    `json:"summary"`
}
