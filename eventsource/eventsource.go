// Package eventsource is Strangler's event sourcing toolkit: an append-only
// event store on SQLite or Postgres in which each aggregate's events are
// its source of truth, with a per-aggregate version for optimistic
// concurrency and a global position; upcasters that bring old schema
// versions of an event up to date as it is read, and refuse versions newer
// than the reader knows; optional snapshots; and a
// projection runner that keeps read models (CQRS) in step with the store,
// exactly once per projection, with a lag metric and a rebuild from
// position 0.
//
// Appended events can also go through the transactional outbox
// (changefeed/outbox) in the same transaction, so that the relay publishes
// them like any other change event.
//
// It knows nothing of the shop: any gorm application migrates the set from
// Migrations into its database and defines its own events and projections.
package eventsource

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/migrations"
)

// Migrations is the golang-migrate set that creates the store's tables:
// es_events, es_snapshots and es_checkpoints.
func Migrations() db.Migrations {
	return db.Migrations{Name: "eventsource", FS: migrations.FS("eventsource")}
}

// Event is one event of an aggregate's stream.
type Event struct {
	// ID identifies the event. Append fills an empty ID with a new UUIDv7;
	// the outbox copy carries the same ID, so consumers deduplicate on it.
	ID uuid.UUID `json:"id"`
	// Type names what happened, such as "order.placed".
	Type string `json:"type"`
	// SchemaVersion is the version of the payload's schema for Type. If
	// zero, Append stores 1. Events read from the store carry the version
	// the upcasters brought them to.
	SchemaVersion int `json:"schema_version"`
	// Payload is the event's JSON body.
	Payload json.RawMessage `json:"payload"`
	// OccurredAt is when it happened. Append fills a zero value with the
	// current time.
	OccurredAt time.Time `json:"occurred_at"`
	// TraceParent is the W3C trace context of the operation that caused
	// the event, if any.
	TraceParent string `json:"traceparent,omitempty"`

	// AggregateType is the stream's kind, set by the store.
	AggregateType string `json:"aggregate_type"`
	// AggregateID is the stream's id, set by the store.
	AggregateID string `json:"aggregate_id"`
	// Version is the event's number in its stream, from 1, set by the
	// store.
	Version int64 `json:"version"`
	// Position is the event's place in the whole store, set by the store:
	// it only grows, and it grows in commit order, so that a reader that
	// has seen a position never later finds an event below it.
	Position int64 `json:"position"`
}

// NewEvent builds an event of eventType, at schema version 1, whose payload
// is v encoded as JSON.
func NewEvent(eventType string, v any) (Event, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: encode payload: %w", eventType, err)
	}
	return Event{Type: eventType, SchemaVersion: 1, Payload: p}, nil
}

// Decode unmarshals the payload into v. Unknown fields are ignored.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("event %s %s/%s v%d: decode payload: %w", e.Type, e.AggregateType, e.AggregateID, e.Version, err)
	}
	return nil
}

// Store is an append-only event store of one aggregate type's streams.
type Store interface {
	// Append adds events to the stream of aggregateID, whose version the
	// caller last saw as expectedVersion (0 for a new stream), and returns
	// the stream's new version. When the stream is at another version, it
	// appends nothing and returns an *ErrConcurrency. It joins the
	// transaction ctx carries (db.Transact), if any.
	Append(ctx context.Context, aggregateID string, expectedVersion int64, events ...Event) (int64, error)
	// Load returns the stream's events after afterVersion, upcast, in
	// version order.
	Load(ctx context.Context, aggregateID string, afterVersion int64) ([]Event, error)
	// ReadAll returns up to limit events of every stream after position
	// after, upcast, in position order.
	ReadAll(ctx context.Context, after int64, limit int) ([]Event, error)
	// Head is the highest position in the store, 0 when it is empty.
	Head(ctx context.Context) (int64, error)
}

// ErrConcurrency is returned by Append when the stream is not at the
// version the caller expected: another writer appended first. The caller
// loads the stream again and retries its command, or reports a conflict.
type ErrConcurrency struct {
	AggregateType string
	// AggregateID is the stream's id; it is empty when a commit that
	// wrote the appends to several streams of a transaction (Postgres)
	// met another writer, and the database did not say in which.
	AggregateID string
	// Expected is the version the caller gave (-1 with no AggregateID);
	// Actual is the stream's, or -1 when a concurrent insert was refused
	// by the store's unique key.
	Expected, Actual int64
}

func (e *ErrConcurrency) Error() string {
	if e.AggregateID == "" {
		return fmt.Sprintf("eventsource: %s: another writer appended to one of the streams the transaction appended to", e.AggregateType)
	}
	if e.Actual < 0 {
		return fmt.Sprintf("eventsource: %s %s: another writer appended at version %d", e.AggregateType, e.AggregateID, e.Expected+1)
	}
	return fmt.Sprintf("eventsource: %s %s is at version %d, not %d", e.AggregateType, e.AggregateID, e.Actual, e.Expected)
}
