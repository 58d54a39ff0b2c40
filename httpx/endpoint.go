package httpx

import (
	"net"
	"sync"
)

// Endpoint is the listen address of a component whose Run opens its
// listener: New records the configured address, Run binds it with Listen,
// and from then on Addr is the bound address, so that a port 0 reads as the
// port the system chose. What prints or passes on the address waits for
// Started.
type Endpoint struct {
	configured string
	started    chan struct{}

	mu    sync.Mutex
	bound string
}

// NewEndpoint records addr, to be bound by Listen.
func NewEndpoint(addr string) *Endpoint {
	return &Endpoint{configured: addr, started: make(chan struct{})}
}

// Listen opens a TCP listener on the configured address (an error names
// it), records the bound address and closes Started. A second Listen opens
// a second listener and keeps the first one's address.
func (e *Endpoint) Listen() (net.Listener, error) {
	ln, err := Listen(e.configured)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bound == "" {
		e.bound = ln.Addr().String()
		close(e.started)
	}
	return ln, nil
}

// Addr is the bound address once Started is closed, the configured one
// before.
func (e *Endpoint) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bound != "" {
		return e.bound
	}
	return e.configured
}

// Started is closed once Listen has bound the address.
func (e *Endpoint) Started() <-chan struct{} { return e.started }
