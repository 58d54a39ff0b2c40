// Package lifecycle holds what Strangler's components share to keep their
// lifecycle rule: New builds, opening no listener and starting no
// goroutine; Run serves until its context ends, once; Close releases what
// New took, once, and no Run follows it.
package lifecycle

import (
	"fmt"
	"sync"
)

// Guard keeps the order of a component's Run and Close. Its zero value is
// ready to use.
type Guard struct {
	mu     sync.Mutex
	ran    bool
	closed bool

	once sync.Once
	err  error
}

// Run is called first thing in a component's Run: it returns an error
// naming component for a second Run, or for a Run after Close.
func (g *Guard) Run(component string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.ran:
		return fmt.Errorf("%s: Run called twice", component)
	case g.closed:
		return fmt.Errorf("%s: Run after Close", component)
	}
	g.ran = true
	return nil
}

// Close calls release the first time and returns its error then and on
// every later call, which waits for the first to finish. A Run after it
// fails.
func (g *Guard) Close(release func() error) error {
	g.once.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		g.err = release()
	})
	return g.err
}
