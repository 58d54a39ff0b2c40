// Package store keeps the orders service's order aggregates in its event
// store: it loads an order as the fold of its events (from a snapshot
// every SnapshotEvery events) and runs a command on it, appending the
// events it returns with the order's version as the expected one, and a
// copy of each in the service's outbox, in one transaction.
package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
)

// Options tune the store. The zero value is usable.
type Options struct {
	// SnapshotEvery takes a snapshot of an order every that many events.
	// If zero, 20; a negative value turns snapshots off.
	SnapshotEvery int64
	// NoOutbox keeps events out of the outbox, for a database without it.
	NoOutbox bool
	// Origin tags the outbox copies of the events appended with where the
	// change first happened. If empty, the service (domain.Source). The
	// forward sync from the monolith sets the monolith's, so that the back
	// sync does not send the monolith's own changes back to it.
	Origin string
}

// Store is the orders' event store.
type Store struct {
	es  *eventsource.SQLStore
	agg eventsource.Aggregate[domain.Order]
}

// New returns the store of orders in gdb, migrated with the eventsource
// set (and the outbox's, unless opt.NoOutbox).
func New(gdb *gorm.DB, opt Options) (*Store, error) {
	es, err := NewEvents(gdb, opt)
	if err != nil {
		return nil, err
	}
	every := opt.SnapshotEvery
	switch {
	case every == 0:
		every = 20
	case every < 0:
		every = 0
	}
	return &Store{es: es, agg: eventsource.Aggregate[domain.Order]{Store: es, Apply: domain.Apply, SnapshotEvery: every}}, nil
}

// NewEvents returns the event store of order streams in gdb, without the
// aggregate on top, as the projections read it. It reads every event
// through the order upcasters (domain.Upcasters), so that an event stored
// at an older schema version reaches its readers at the current one, and
// one at a newer version is refused.
func NewEvents(gdb *gorm.DB, opt Options) (*eventsource.SQLStore, error) {
	o := eventsource.Options{AggregateType: domain.AggregateType, Upcasters: domain.Upcasters()}
	if !opt.NoOutbox {
		o.Outbox = &outbox.Writer{Source: domain.Source, Origin: opt.Origin}
	}
	es, err := eventsource.NewStore(gdb, o)
	if err != nil {
		return nil, fmt.Errorf("orders store: %w", err)
	}
	return es, nil
}

// Events is the event store underneath.
func (s *Store) Events() *eventsource.SQLStore { return s.es }

// Get returns the order with id, or domain.ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (domain.Order, error) {
	o, _, err := s.agg.Load(ctx, domain.AggregateID(id))
	if err != nil {
		return o, fmt.Errorf("load order %d: %w", id, err)
	}
	if !o.Exists() {
		return o, fmt.Errorf("order %d: %w", id, domain.ErrNotFound)
	}
	return o, nil
}

// Execute runs cmd on the order with id and appends the events it returns,
// again on the fresh state when another writer appended in between. It
// returns the order as the events left it. An order that does not exist
// is the zero Order, for Place and Import; the other commands refuse it
// with domain.ErrNotFound.
func (s *Store) Execute(ctx context.Context, id int64, cmd func(domain.Order) ([]eventsource.Event, error)) (domain.Order, error) {
	o, _, err := s.agg.Update(ctx, domain.AggregateID(id), func(o domain.Order, _ int64) ([]eventsource.Event, error) { return cmd(o) })
	if err != nil {
		return o, fmt.Errorf("order %d: %w", id, err)
	}
	return o, nil
}

// Place places a new order.
func (s *Store) Place(ctx context.Context, p domain.Placed) (domain.Order, error) {
	return s.Execute(ctx, p.ID, func(o domain.Order) ([]eventsource.Event, error) { return o.Place(p) })
}
