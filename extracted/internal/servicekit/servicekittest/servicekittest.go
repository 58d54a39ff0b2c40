// Package servicekittest helps the extracted services' tests hold a
// service's start-up where a slow one would stand.
package servicekittest

import (
	"context"
	"sync"
)

// Hold holds a service's start-up in its BeforeLoad hook, between the
// migrations and the load of its ownership, until Open.
type Hold struct {
	held, opened         chan struct{}
	heldOnce, openedOnce sync.Once
}

// NewHold returns a closed hold: the start-up that reaches it waits.
func NewHold() *Hold { return &Hold{held: make(chan struct{}), opened: make(chan struct{})} }

// BeforeLoad is the hook for the service's Options: it waits until Open,
// or fails with ctx's error when the service stops first.
func (h *Hold) BeforeLoad(ctx context.Context) error {
	h.heldOnce.Do(func() { close(h.held) })
	select {
	case <-h.opened:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Holding is closed once a start-up waits at the hold.
func (h *Hold) Holding() <-chan struct{} { return h.held }

// Open lets the start-up go on; a second Open does nothing.
func (h *Hold) Open() { h.openedOnce.Do(func() { close(h.opened) }) }
