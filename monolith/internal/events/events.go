// Package events writes the shop's domain events into the transactional
// outbox (package changefeed/outbox), inside the transaction that makes the
// change, so that an event is published if and only if its change
// committed.
//
// The event types, aggregates and payloads are the modules' published
// contract, documented in docs/events.md ("The shop's events"). Payloads
// carry the aggregate's whole state after the change, as Debezium's change
// events carry the row, so a consumer can apply any one of them on its own
// and a backfill's snapshot of a row has the same shape.
package events

import (
	"context"
	"fmt"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/outbox"
)

// Origin tags every event whose change started in the monolith, so that a
// service syncing back does not apply its own changes twice.
const Origin = "monolith"

// Emitter writes one module's events.
type Emitter struct {
	w outbox.Writer
}

// New returns the emitter of module, whose events have the source
// "monolith.<module>".
func New(module string) *Emitter {
	return &Emitter{w: outbox.Writer{Source: "monolith." + module, Origin: Origin}}
}

// Emit writes an event of type eventType about aggregateType/aggregateID
// with payload v, in the transaction that ctx carries (db.Transact). It
// queues the event (outbox.Writer.Queue), so that every event of one
// transaction, an order's and its stock's, is one INSERT at the commit.
func (e *Emitter) Emit(ctx context.Context, aggregateType, aggregateID, eventType string, v any) error {
	ev, err := changefeed.NewEvent(aggregateType, aggregateID, eventType, v)
	if err != nil {
		return err
	}
	if err := e.w.Queue(ctx, ev); err != nil {
		return fmt.Errorf("emit %s: %w", eventType, err)
	}
	return nil
}
