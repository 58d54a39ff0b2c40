package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The data plane enforces connection timeouts with a watchdog instead of
// the runtime's deadlines. fasthttp sets a deadline on both connections of
// every request (the client's for the request, the backend's for the
// answer), and each deadline is a timer operation in the runtime; on a
// proxy that forwards tens of thousands of requests a second, those timer
// operations cost as much as routing. A watchConn records the deadlines it
// is given in plain fields, and a watchdog goroutine closes, every
// watchTick, the connections whose pending read or write has overrun.
// Timeouts therefore fire up to watchTick late.
//
// Two semantics share the type. A client connection's deadline is
// absolute, as fasthttp means it: the request must have arrived by then. A
// backend connection's deadline is turned into an idle timeout: each read
// or write may wait that long for progress, like nginx's
// proxy_read_timeout, so that a long event stream or a large upload that
// keeps moving is not cut off.

const watchTick = 50 * time.Millisecond

// errWatchdogTimeout is what a read or write returns after the watchdog
// closed its connection for overrunning.
var errWatchdogTimeout error = &timeoutErr{}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

// watchdog tracks live connections and closes those that overrun.
type watchdog struct {
	mu    sync.Mutex
	conns map[*watchConn]struct{}
}

func newWatchdog() *watchdog { return &watchdog{conns: map[*watchConn]struct{}{}} }

// wrap registers c. idle selects the backend semantics.
func (w *watchdog) wrap(c net.Conn, idle bool) *watchConn {
	wc := &watchConn{Conn: c, w: w, idle: idle}
	w.mu.Lock()
	w.conns[wc] = struct{}{}
	w.mu.Unlock()
	return wc
}

// run checks the connections every watchTick until ctx ends.
func (w *watchdog) run(ctx context.Context) {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	var overdue []*watchConn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		overdue = overdue[:0]
		w.mu.Lock()
		for c := range w.conns {
			if c.overdue(now) {
				overdue = append(overdue, c)
			}
		}
		w.mu.Unlock()
		for _, c := range overdue {
			c.timedOut.Store(true)
			_ = c.Conn.Close()
		}
	}
}

// watchConn is a connection whose deadlines the watchdog enforces.
type watchConn struct {
	net.Conn
	w    *watchdog
	idle bool

	// For each direction: the deadline (absolute) or the idle span, and
	// when the pending operation began (0 when none is pending).
	readDL, readSpan, readSince    atomic.Int64
	writeDL, writeSpan, writeSince atomic.Int64

	timedOut atomic.Bool
	closed   atomic.Bool
}

func (c *watchConn) overdue(now int64) bool {
	return pastDue(now, c.idle, c.readDL.Load(), c.readSpan.Load(), c.readSince.Load()) ||
		pastDue(now, c.idle, c.writeDL.Load(), c.writeSpan.Load(), c.writeSince.Load())
}

func pastDue(now int64, idle bool, dl, span, since int64) bool {
	if since == 0 || dl == 0 {
		return false
	}
	if idle {
		return now-since > span
	}
	return now > dl
}

// arm sets both directions' idle spans for an exchange, without a clock
// read: the transport arms every backend request with its route timeout.
func (c *watchConn) arm(span time.Duration) {
	if span <= 0 {
		c.readDL.Store(0)
		c.writeDL.Store(0)
		return
	}
	c.readSpan.Store(int64(span))
	c.writeSpan.Store(int64(span))
	c.readDL.Store(1)
	c.writeDL.Store(1)
}

func (c *watchConn) SetReadDeadline(t time.Time) error {
	setDeadline(t, &c.readDL, &c.readSpan)
	return nil
}

func (c *watchConn) SetWriteDeadline(t time.Time) error {
	setDeadline(t, &c.writeDL, &c.writeSpan)
	return nil
}

func (c *watchConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

func setDeadline(t time.Time, dl, span *atomic.Int64) {
	if t.IsZero() {
		dl.Store(0)
		return
	}
	d := t.UnixNano()
	span.Store(d - coarseNow())
	dl.Store(d)
}

func (c *watchConn) Read(b []byte) (int, error) {
	watched := c.readDL.Load() != 0
	if watched {
		c.readSince.Store(coarseNow())
	}
	n, err := c.Conn.Read(b)
	if watched {
		c.readSince.Store(0)
	}
	if err != nil && c.timedOut.Load() {
		err = errWatchdogTimeout
	}
	return n, err
}

func (c *watchConn) Write(b []byte) (int, error) {
	watched := c.writeDL.Load() != 0
	if watched {
		c.writeSince.Store(coarseNow())
	}
	n, err := c.Conn.Write(b)
	if watched {
		c.writeSince.Store(0)
	}
	if err != nil && c.timedOut.Load() {
		err = errWatchdogTimeout
	}
	return n, err
}

func (c *watchConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.w.mu.Lock()
		delete(c.w.conns, c)
		c.w.mu.Unlock()
	}
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, for WebSocket splicing.
func (c *watchConn) CloseWrite() error {
	if tc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return tc.CloseWrite()
	}
	return nil
}

// watchListener wraps accepted connections.
type watchListener struct {
	net.Listener
	w *watchdog
}

func (l *watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}
	return l.w.wrap(c, false), nil
}

// coarse is a clock that a goroutine advances every clockTick, for hot
// paths that need the time only roughly.
var (
	coarse     atomic.Int64
	coarseOnce sync.Once
)

const clockTick = 5 * time.Millisecond

func coarseNow() int64 {
	coarseOnce.Do(func() {
		coarse.Store(time.Now().UnixNano())
		go func() {
			for range time.Tick(clockTick) {
				coarse.Store(time.Now().UnixNano())
			}
		}()
	})
	return coarse.Load()
}
