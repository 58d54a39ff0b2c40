// Package changefeed is Strangler's change-data events toolkit: a
// transactional outbox that any gorm application writes its domain events
// into (package outbox), a relay that publishes them to Kafka in per-key
// commit order (package relay), an embedded Kafka-protocol broker (package
// broker), idempotent consumers with an inbox and a dead-letter topic
// (package consumer), a watermarked snapshot of existing rows (package
// backfill) and a table comparison that finds drift (package verify).
//
// This package holds what they share: the event envelope, its mapping to
// Kafka messages, which follows the conventions of Debezium's outbox event
// router so that a team can swap the relay for Debezium, and the Kafka
// settings.
package changefeed

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Event is one domain event: the envelope that the outbox stores, the relay
// publishes and the consumer decodes.
type Event struct {
	// ID identifies the event; consumers deduplicate on it. The outbox fills
	// an empty ID with a new UUIDv7, so that IDs sort by creation time.
	ID uuid.UUID `json:"id"`
	// Source names the service or module that emitted the event, such as
	// "monolith.orders".
	Source string `json:"source"`
	// AggregateType names the kind of entity the event is about, such as
	// "order". It selects the topic: <prefix>.<aggregatetype>.
	AggregateType string `json:"aggregatetype"`
	// AggregateID identifies the entity. It is the Kafka message key, so all
	// events of one aggregate land on one partition, in order.
	AggregateID string `json:"aggregateid"`
	// Type names what happened, such as "order.placed".
	Type string `json:"type"`
	// SchemaVersion is the version of the payload's schema for Type. If zero,
	// 1 is used.
	SchemaVersion int `json:"schema_version"`
	// OccurredAt is when the change happened. The outbox fills a zero value
	// with the current time.
	OccurredAt time.Time `json:"occurred_at"`
	// TraceParent is the W3C trace context (traceparent header value) of the
	// operation that caused the event.
	TraceParent string `json:"traceparent,omitempty"`
	// Origin tags where the change first happened. When data is synchronised
	// both ways, a consumer drops events whose origin is its own, so that a
	// change never comes back to where it started. If empty, the outbox uses
	// Source.
	Origin string `json:"origin,omitempty"`
	// Payload is the event's JSON body.
	Payload json.RawMessage `json:"payload"`
}

// NewEvent builds an event whose payload is v encoded as JSON.
func NewEvent(aggregateType, aggregateID, eventType string, v any) (Event, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("event %s %s/%s: encode payload: %w", eventType, aggregateType, aggregateID, err)
	}
	return Event{AggregateType: aggregateType, AggregateID: aggregateID, Type: eventType, SchemaVersion: 1, Payload: p}, nil
}

// Decode unmarshals the payload into v. Unknown fields are ignored, as a
// tolerant reader should.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("event %s %s: decode payload: %w", e.Type, e.ID, err)
	}
	return nil
}

// Version returns SchemaVersion, or 1 when it is not set.
func (e Event) Version() int {
	if e.SchemaVersion <= 0 {
		return 1
	}
	return e.SchemaVersion
}

// MaxPayloadBytes bounds an event's payload, so that every event fits in a
// produce request under Kafka's default message.max.bytes (1 MiB) with room
// for its headers.
const MaxPayloadBytes = 900 << 10

// ErrInvalidEvent is wrapped by every validation error of Event.Validate, so
// that callers can tell bad input from a failing database.
var ErrInvalidEvent = errors.New("invalid event")

// topicName is what Kafka accepts in a topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Validate reports every field that would make the event unpublishable.
func (e Event) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidEvent}, args...)...))
	}
	switch {
	case e.AggregateType == "":
		bad("aggregatetype is empty")
	case len(e.AggregateType) > 200 || !topicName.MatchString(e.AggregateType):
		bad("aggregatetype %q must be 1 to 200 of a-z, A-Z, 0-9, '.', '_' or '-', since it names a topic", e.AggregateType)
	}
	if e.AggregateID == "" {
		bad("aggregateid is empty")
	}
	if e.Type == "" {
		bad("type is empty")
	}
	if e.Source == "" {
		bad("source is empty")
	}
	if e.SchemaVersion < 0 {
		bad("schema_version %d is negative", e.SchemaVersion)
	}
	if len(e.Payload) == 0 {
		bad("payload is empty")
	} else if len(e.Payload) > MaxPayloadBytes {
		bad("payload of %d bytes is larger than %d", len(e.Payload), MaxPayloadBytes)
	} else if !json.Valid(e.Payload) {
		bad("payload is not valid JSON")
	}
	if e.TraceParent != "" {
		if _, err := ParseTraceParent(e.TraceParent); err != nil {
			bad("traceparent: %v", err)
		}
	}
	return errors.Join(errs...)
}

// Topic is the topic of events about aggregateType: "<prefix>.<type>", the
// name Debezium's outbox event router gives it with
// route.topic.replacement=<prefix>.${routedByValue}.
func Topic(prefix, aggregateType string) string {
	if prefix == "" {
		return aggregateType
	}
	return prefix + "." + aggregateType
}

// DeadLetterTopic is where a consumer sends the events of topic that it
// cannot process.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }
