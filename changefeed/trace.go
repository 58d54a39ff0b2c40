package changefeed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
)

// TraceParent is a parsed W3C trace context (the traceparent header,
// https://www.w3.org/TR/trace-context/).
type TraceParent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// ParseTraceParent parses a version-00 traceparent value such as
// "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".
func ParseTraceParent(s string) (TraceParent, error) {
	var tp TraceParent
	parts := strings.Split(s, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return tp, errors.New("want 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>")
	}
	if parts[0] == "ff" {
		return tp, errors.New("version ff is invalid")
	}
	if parts[0] == "00" && len(parts) != 4 {
		return tp, errors.New("version 00 has exactly four fields")
	}
	var ver [1]byte
	if _, err := hex.Decode(ver[:], []byte(parts[0])); err != nil {
		return tp, errors.New("version is not hex")
	}
	if _, err := hex.Decode(tp.TraceID[:], []byte(parts[1])); err != nil || strings.ToLower(parts[1]) != parts[1] {
		return tp, errors.New("trace id is not lower-case hex")
	}
	if _, err := hex.Decode(tp.SpanID[:], []byte(parts[2])); err != nil || strings.ToLower(parts[2]) != parts[2] {
		return tp, errors.New("span id is not lower-case hex")
	}
	var flags [1]byte
	if _, err := hex.Decode(flags[:], []byte(parts[3])); err != nil {
		return tp, errors.New("flags are not hex")
	}
	tp.Flags = flags[0]
	if tp.TraceID == ([16]byte{}) {
		return tp, errors.New("trace id is all zeros")
	}
	if tp.SpanID == ([8]byte{}) {
		return tp, errors.New("span id is all zeros")
	}
	return tp, nil
}

// String formats tp as a version-00 traceparent value.
func (tp TraceParent) String() string {
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tp.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, tp.SpanID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{tp.Flags})
	return string(b)
}

// NewTraceParent starts a new sampled trace.
func NewTraceParent() TraceParent {
	var tp TraceParent
	_, _ = rand.Read(tp.TraceID[:])
	_, _ = rand.Read(tp.SpanID[:])
	tp.Flags = 0x01
	return tp
}

// Child returns a context in the same trace with a new span id, for the
// work that handling an event starts.
func (tp TraceParent) Child() TraceParent {
	c := tp
	_, _ = rand.Read(c.SpanID[:])
	return c
}

type traceKey struct{}

// WithTraceParent returns ctx carrying the trace context tp (a traceparent
// value). The outbox stamps it on the events written under ctx; an HTTP
// middleware puts the incoming request's traceparent header there. An
// invalid value is dropped rather than propagated.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if _, err := ParseTraceParent(tp); err != nil {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, tp)
}

// TraceParentFrom returns the trace context that ctx carries, or "".
func TraceParentFrom(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}
