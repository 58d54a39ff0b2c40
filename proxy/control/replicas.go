package control

import (
	"context"
	"encoding/json"
	"time"
)

// ReplicaReporter is what a shared store offers beyond Store:
// each proxy replica reports the revision and table version it serves,
// and an operator lists the reports to see a straggler. It is an extra
// interface, found with a type assertion on a Store, so that the
// file store, with one proxy, need not have it.
type ReplicaReporter interface {
	// ReportReplica records st as what st.Replica serves, for ttl: a
	// replica that stops reporting drops out of Replicas then.
	ReportReplica(ctx context.Context, st ReplicaStatus, ttl time.Duration) error
	// Replicas lists the replicas whose report has not expired, sorted by
	// Replica.
	Replicas(ctx context.Context) ([]ReplicaStatus, error)
}

// ReplicaStatus is one replica's report.
type ReplicaStatus struct {
	// Replica names the replica, such as its host and port; it must not
	// be empty.
	Replica string `json:"replica"`
	// Revision is the control state's revision the replica serves.
	Revision int64 `json:"revision"`
	// Version is the route table's version the replica serves.
	Version int64 `json:"version"`
	// Detail is anything else the replica reports, as JSON. If nil,
	// nothing.
	Detail json.RawMessage `json:"detail,omitempty"`
	// ReportedAt and ExpiresAt are set by the store, from the database
	// clock; ReportReplica ignores them.
	ReportedAt time.Time `json:"reported_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}
