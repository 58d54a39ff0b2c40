package changefeed_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/stranglerkit/strangler/changefeed"
)

func validEvent() changefeed.Event {
	return changefeed.Event{
		ID:            uuid.MustParse("01929f2e-7f3a-7cc0-9a4b-0c1d2e3f4a5b"),
		Source:        "monolith.orders",
		AggregateType: "order",
		AggregateID:   "o-1",
		Type:          "order.placed",
		SchemaVersion: 2,
		OccurredAt:    time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Origin:        "monolith",
		Payload:       json.RawMessage(`{"id":"o-1","total":100}`),
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*changefeed.Event)
		want   string
	}{
		{"valid", func(*changefeed.Event) {}, ""},
		{"no aggregate type", func(e *changefeed.Event) { e.AggregateType = "" }, "aggregatetype is empty"},
		{"aggregate type with space", func(e *changefeed.Event) { e.AggregateType = "sales order" }, "names a topic"},
		{"no aggregate id", func(e *changefeed.Event) { e.AggregateID = "" }, "aggregateid is empty"},
		{"no type", func(e *changefeed.Event) { e.Type = "" }, "type is empty"},
		{"no source", func(e *changefeed.Event) { e.Source = "" }, "source is empty"},
		{"negative version", func(e *changefeed.Event) { e.SchemaVersion = -1 }, "negative"},
		{"no payload", func(e *changefeed.Event) { e.Payload = nil }, "payload is empty"},
		{"bad payload", func(e *changefeed.Event) { e.Payload = json.RawMessage(`{"a":`) }, "not valid JSON"},
		{"huge payload", func(e *changefeed.Event) {
			e.Payload = json.RawMessage(`"` + strings.Repeat("x", changefeed.MaxPayloadBytes) + `"`)
		}, "larger than"},
		{"bad traceparent", func(e *changefeed.Event) { e.TraceParent = "00-xyz" }, "traceparent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.change(&e)
			err := e.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, changefeed.ErrInvalidEvent) {
				t.Fatalf("Validate = %v, want ErrInvalidEvent with %q", err, tt.want)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	e := validEvent()
	m := changefeed.Message("strangler", e)
	if m.Topic != "strangler.order" || string(m.Key) != "o-1" || string(m.Value) != string(e.Payload) {
		t.Fatalf("message topic %q key %q value %q", m.Topic, m.Key, m.Value)
	}
	m.Partition, m.Offset = 1, 9
	got, err := changefeed.FromMessage("strangler", m)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OccurredAt.Equal(e.OccurredAt) {
		t.Fatalf("occurred_at %v, want %v", got.OccurredAt, e.OccurredAt)
	}
	got.OccurredAt = e.OccurredAt
	if string(got.Payload) != string(e.Payload) {
		t.Fatalf("payload %s", got.Payload)
	}
	got.Payload, e.Payload = nil, nil
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
}

func TestFromMessageTolerant(t *testing.T) {
	id := "01929f2e-7f3a-7cc0-9a4b-0c1d2e3f4a5b"
	h := func(kv ...string) []kafka.Header {
		var out []kafka.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	tests := []struct {
		name    string
		headers []kafka.Header
		check   func(changefeed.Event) bool
		wantErr string
	}{
		{"minimal: version 1, type from topic", h("id", id, "type", "order.placed"),
			func(e changefeed.Event) bool { return e.SchemaVersion == 1 && e.AggregateType == "order" }, ""},
		{"json-quoted headers (Kafka Connect JsonConverter)", h("id", `"`+id+`"`, "type", `"order.placed"`, "schema_version", "3"),
			func(e changefeed.Event) bool {
				return e.ID.String() == id && e.Type == "order.placed" && e.SchemaVersion == 3
			}, ""},
		{"epoch microseconds (Debezium MicroTimestamp)", h("id", id, "type", "t", "occurred_at", "1767323045000006"),
			func(e changefeed.Event) bool { return e.OccurredAt.Equal(time.UnixMicro(1767323045000006)) }, ""},
		{"epoch milliseconds", h("id", id, "type", "t", "occurred_at", "1767323045000"),
			func(e changefeed.Event) bool { return e.OccurredAt.Equal(time.UnixMilli(1767323045000)) }, ""},
		{"unknown headers ignored, bad traceparent dropped", h("id", id, "type", "t", "x-custom", "1", "traceparent", "junk"),
			func(e changefeed.Event) bool { return e.TraceParent == "" }, ""},
		{"Debezium eventType header name", h("id", id, "eventType", "order.placed"),
			func(e changefeed.Event) bool { return e.Type == "order.placed" }, ""},
		{"no id", h("type", "t"), nil, "no id header"},
		{"bad id", h("id", "nope", "type", "t"), nil, "not a UUID"},
		{"no type", h("id", id), nil, "no type header"},
		{"bad version", h("id", id, "type", "t", "schema_version", "x"), nil, "schema_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := kafka.Message{Topic: "strangler.order", Key: []byte("o-1"), Value: []byte(`{}`), Headers: tt.headers}
			e, err := changefeed.FromMessage("strangler", m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, changefeed.ErrMalformed) {
					t.Fatalf("FromMessage = %v, want ErrMalformed with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(e) {
				t.Fatalf("decoded %+v", e)
			}
		})
	}
}

func TestTraceParent(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", true},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"", true},
	}
	for _, tt := range tests {
		tp, err := changefeed.ParseTraceParent(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTraceParent(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
		if err == nil && strings.HasPrefix(tt.in, "00-") && tp.String() != tt.in {
			t.Errorf("String() = %q, want %q", tp.String(), tt.in)
		}
	}
	root := changefeed.NewTraceParent()
	child := root.Child()
	if child.TraceID != root.TraceID || child.SpanID == root.SpanID {
		t.Fatalf("child %v of %v", child, root)
	}
	if _, err := changefeed.ParseTraceParent(root.String()); err != nil {
		t.Fatal(err)
	}
}

func TestKafkaConfig(t *testing.T) {
	c := changefeed.KafkaConfig{}
	c.SetDefaults("")
	if err := c.Validate(); err != nil || c.TopicPrefix != "strangler" || c.Partitions != 6 || c.ClientID != "strangler" || c.Partitioner != "hash" {
		t.Fatalf("defaults %+v: %v", c, err)
	}
	bad := changefeed.KafkaConfig{Brokers: []string{"nohost"}, TopicPrefix: "a b", Partitions: -1, ReplicationFactor: -2, Partitioner: "random"}
	err := bad.Validate()
	for _, want := range []string{"brokers[0]", "topic_prefix", "partitions", "replication_factor", "partitioner"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want a %s problem", err, want)
		}
	}
}

// TestBalancer pins the partitioners: an aggregate must land where kafka-go's
// Hash (FNV-1a) or the Java client's murmur2 would put it, so that a relay
// and Debezium agree when configured alike.
func TestBalancer(t *testing.T) {
	parts := []int{0, 1, 2, 3, 4, 5}
	msg := kafka.Message{Key: []byte("order-42")}
	hash := changefeed.KafkaConfig{Partitioner: "hash"}.Balancer().Balance(msg, parts...)
	if want := (&kafka.Hash{}).Balance(msg, parts...); hash != want {
		t.Errorf("hash partitioner put the key on %d, kafka-go's Hash on %d", hash, want)
	}
	m2 := changefeed.KafkaConfig{Partitioner: "murmur2"}.Balancer().Balance(msg, parts...)
	if want := (kafka.Murmur2Balancer{}).Balance(msg, parts...); m2 != want {
		t.Errorf("murmur2 partitioner put the key on %d, kafka-go's Murmur2Balancer on %d", m2, want)
	}
}
