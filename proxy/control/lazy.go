package control

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
)

// Lazy is a Store that opens its underlying store on first use, and again
// on each use until an open succeeds, so that a proxy replica starts while
// a shared store is unreachable: it serves nothing until it has a table,
// instead of failing to start. Once open, every method goes to the
// underlying store.
type Lazy struct {
	open func(context.Context) (Store, error)
	// opening holds one token, which the caller that opens the store
	// takes: one open at a time, and the others wait for it as long as
	// their contexts let them, while mu stays free for Inner and Close.
	opening chan struct{}

	mu    sync.Mutex
	inner Store
	// changed is what Changed returns: it delivers once when the store
	// opens, and then what the underlying store's Changed delivers.
	changed chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closed  bool
}

var (
	_ Store          = (*Lazy)(nil)
	_ RevisionReader = (*Lazy)(nil)
)

// NewLazy returns a Lazy that opens its store with open.
func NewLazy(open func(context.Context) (Store, error)) *Lazy {
	return &Lazy{open: open, opening: make(chan struct{}, 1), changed: make(chan struct{}, 1), stop: make(chan struct{})}
}

// ErrStoreClosed is what a closed Lazy's methods return.
var ErrStoreClosed = errors.New("the control store is closed")

// current is the open store, or nil, or ErrStoreClosed.
func (l *Lazy) current() (Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrStoreClosed
	}
	return l.inner, nil
}

// get returns the open store, opening it first if it is not. The open
// runs outside mu, so that a slow one (a dial to an unreachable server)
// holds up only the callers that need the store, each no longer than its
// context allows.
func (l *Lazy) get(ctx context.Context) (Store, error) {
	if s, err := l.current(); s != nil || err != nil {
		return s, err
	}
	select {
	case l.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("open the control store: %w", ctx.Err())
	}
	defer func() { <-l.opening }()
	// Another caller may have opened it, or Close come, meanwhile.
	if s, err := l.current(); s != nil || err != nil {
		return s, err
	}
	s, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.Join(ErrStoreClosed, s.Close())
	}
	l.inner = s
	if ch := s.Changed(); ch != nil {
		l.done = make(chan struct{})
		go l.forward(ch)
	}
	l.wake()
	return s, nil
}

func (l *Lazy) wake() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// forward passes the underlying store's wake-ups on until Close.
func (l *Lazy) forward(ch <-chan struct{}) {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case <-ch:
			l.wake()
		}
	}
}

// Open opens the store now if it is not open, and reports why not.
func (l *Lazy) Open(ctx context.Context) error {
	_, err := l.get(ctx)
	return err
}

// Inner is the underlying store, or nil while it is not open, so that a
// caller reaches an interface of the store beyond Store.
func (l *Lazy) Inner() Store {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inner
}

// Load implements Store.
func (l *Lazy) Load(ctx context.Context) (*State, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Load(ctx)
}

// Revision implements RevisionReader: the underlying store's revision,
// read alone if it is a RevisionReader, else from a Load.
func (l *Lazy) Revision(ctx context.Context) (int64, error) {
	s, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	if rr, ok := s.(RevisionReader); ok {
		return rr.Revision(ctx)
	}
	st, err := s.Load(ctx)
	if err != nil || st == nil {
		return 0, err
	}
	return st.Revision, nil
}

// Save implements Store.
func (l *Lazy) Save(ctx context.Context, st *State) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Save(ctx, st)
}

// Changed implements Store: a Lazy is for a shared store, so it never
// returns nil.
func (l *Lazy) Changed() <-chan struct{} { return l.changed }

// AppendAudit implements Store.
func (l *Lazy) AppendAudit(ctx context.Context, e api.AuditEntry) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.AppendAudit(ctx, e)
}

// Audit implements Store.
func (l *Lazy) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	s, err := l.get(ctx)
	if err != nil {
		return AuditPage{}, err
	}
	return s.Audit(ctx, q)
}

// Register implements Store.
func (l *Lazy) Register(ctx context.Context, service, url string, ttl time.Duration) (bool, error) {
	s, err := l.get(ctx)
	if err != nil {
		return false, err
	}
	return s.Register(ctx, service, url, ttl)
}

// Deregister implements Store.
func (l *Lazy) Deregister(ctx context.Context, service, url string) (bool, error) {
	s, err := l.get(ctx)
	if err != nil {
		return false, err
	}
	return s.Deregister(ctx, service, url)
}

// Instances implements Store.
func (l *Lazy) Instances(ctx context.Context) (map[string][]Instance, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Instances(ctx)
}

// AddUsage implements Store.
func (l *Lazy) AddUsage(ctx context.Context, deltas []Usage) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.AddUsage(ctx, deltas)
}

// Usage implements Store.
func (l *Lazy) Usage(ctx context.Context) ([]Usage, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Usage(ctx)
}

// Close stops the forwarding and closes the underlying store if it was
// opened. It waits for an open under way, whose store the open then
// closes itself.
func (l *Lazy) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.stop)
	inner, done := l.inner, l.done
	l.inner = nil
	l.mu.Unlock()
	l.opening <- struct{}{}
	<-l.opening
	if done != nil {
		<-done
	}
	if inner != nil {
		return inner.Close()
	}
	return nil
}
