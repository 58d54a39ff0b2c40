package changefeed

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
)

// The Kafka headers that carry the envelope. The message key is the
// aggregate id and the value is the payload, as Debezium's outbox event
// router emits them; the router's default puts the event id in the "id"
// header, and its table.fields.additional.placement setting can place the
// other columns in headers of the same names (see docs/events.md).
const (
	HeaderID            = "id"
	HeaderSource        = "source"
	HeaderAggregateType = "aggregatetype"
	HeaderType          = "type"
	HeaderSchemaVersion = "schema_version"
	HeaderOccurredAt    = "occurred_at"
	HeaderTraceParent   = "traceparent"
	HeaderOrigin        = "origin"
)

// Message encodes e as the Kafka message the relay publishes to
// Topic(prefix, e.AggregateType).
func Message(prefix string, e Event) kafka.Message {
	h := make([]kafka.Header, 0, 8)
	h = append(h,
		kafka.Header{Key: HeaderID, Value: []byte(e.ID.String())},
		kafka.Header{Key: HeaderSource, Value: []byte(e.Source)},
		kafka.Header{Key: HeaderAggregateType, Value: []byte(e.AggregateType)},
		kafka.Header{Key: HeaderType, Value: []byte(e.Type)},
		kafka.Header{Key: HeaderSchemaVersion, Value: []byte(strconv.Itoa(e.Version()))},
		kafka.Header{Key: HeaderOccurredAt, Value: []byte(e.OccurredAt.UTC().Format(time.RFC3339Nano))},
	)
	if e.TraceParent != "" {
		h = append(h, kafka.Header{Key: HeaderTraceParent, Value: []byte(e.TraceParent)})
	}
	if e.Origin != "" {
		h = append(h, kafka.Header{Key: HeaderOrigin, Value: []byte(e.Origin)})
	}
	return kafka.Message{
		Topic:   Topic(prefix, e.AggregateType),
		Key:     []byte(e.AggregateID),
		Value:   e.Payload,
		Headers: h,
	}
}

// ErrMalformed is wrapped by FromMessage's errors: the message cannot be an
// event, and retrying will not change that.
var ErrMalformed = errors.New("malformed event message")

// FromMessage decodes the event in m, a message that Message or Debezium's
// outbox event router produced. It is a tolerant reader: headers it does not
// know are ignored, header values may be JSON-quoted (as Kafka Connect's
// JsonConverter writes them), occurred_at may be RFC 3339 or epoch
// milliseconds or microseconds, and a missing schema version means 1. Only a
// missing or unparsable id, or a missing type, is an error. A missing
// aggregatetype header is taken from the topic name after prefix.
func FromMessage(prefix string, m kafka.Message) (Event, error) {
	var e Event
	var errs []string
	for _, h := range m.Headers {
		v := headerString(h.Value)
		switch h.Key {
		case HeaderID:
			id, err := uuid.Parse(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("header id %q is not a UUID", v))
				continue
			}
			e.ID = id
		case HeaderSource:
			e.Source = v
		case HeaderAggregateType:
			e.AggregateType = v
		case HeaderType, "eventType":
			e.Type = v
		case HeaderSchemaVersion, "schemaVersion":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Sprintf("header schema_version %q is not a positive integer", v))
				continue
			}
			e.SchemaVersion = n
		case HeaderOccurredAt:
			t, err := parseTime(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("header occurred_at %q: %v", v, err))
				continue
			}
			e.OccurredAt = t
		case HeaderTraceParent:
			if _, err := ParseTraceParent(v); err == nil {
				e.TraceParent = v
			}
		case HeaderOrigin:
			e.Origin = v
		}
	}
	if e.ID == uuid.Nil && len(errs) == 0 {
		errs = append(errs, "no id header")
	}
	if e.Type == "" {
		errs = append(errs, "no type header")
	}
	if e.AggregateType == "" {
		e.AggregateType = strings.TrimPrefix(m.Topic, prefix+".")
	}
	if e.SchemaVersion == 0 {
		e.SchemaVersion = 1
	}
	e.AggregateID = string(m.Key)
	e.Payload = m.Value
	if len(errs) > 0 {
		return e, fmt.Errorf("%w at %s/%d@%d: %s", ErrMalformed, m.Topic, m.Partition, m.Offset, strings.Join(errs, "; "))
	}
	return e, nil
}

// headerString returns a header value as text, unquoting a JSON string.
func headerString(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		if s, err := strconv.Unquote(string(b)); err == nil {
			return s
		}
	}
	return string(b)
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 or epoch milliseconds or microseconds")
	}
	// Debezium encodes timestamps as epoch microseconds (MicroTimestamp) or
	// milliseconds (Timestamp); values above 1e14 cannot be milliseconds of
	// any plausible date.
	if n > 1e14 {
		return time.UnixMicro(n).UTC(), nil
	}
	return time.UnixMilli(n).UTC(), nil
}
