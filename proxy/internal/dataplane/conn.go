package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/httpx"
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
// Two semantics share the type. A client connection's read deadline is
// absolute, as fasthttp means it: the request must have arrived by then. A
// backend connection's deadlines, and a client connection's writes, are
// idle timeouts instead: each read or write may wait that long for
// progress, like nginx's proxy_read_timeout and send_timeout, so that a
// long event stream or a large download that keeps moving is not cut off,
// while a client that stops reading its answer does not hold the
// connection, and the backend exchange behind it, for ever.

const watchTick = 50 * time.Millisecond

// errWatchdogTimeout is what a read or write returns after the watchdog
// closed its connection for overrunning.
var errWatchdogTimeout error = &timeoutErr{}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

// watchdog tracks live connections and ends the waits that overrun.
type watchdog struct {
	mu    sync.Mutex
	conns map[*watchConn]struct{}
}

func newWatchdog() *watchdog { return &watchdog{conns: map[*watchConn]struct{}{}} }

// wrap registers c. idle selects the backend semantics; a client
// connection has its phase limits in cl.
func (w *watchdog) wrap(c net.Conn, idle bool) *watchConn {
	wc := &watchConn{Conn: c, w: w, idle: idle, raw: newRawIO(c)}
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
			c.expire(now)
		}
	}
}

// watchConn is a connection whose deadlines the watchdog enforces.
type watchConn struct {
	net.Conn
	w    *watchdog
	idle bool
	// raw reads and writes a TCP connection's socket; nil for another
	// connection, which keeps its own Read and Write.
	raw *rawIO
	// cl is the client side's limits; nil on a backend connection.
	cl *clientLimits

	// For each direction: the deadline (absolute) or the idle span, and
	// when the pending operation began (0 when none is pending).
	readDL, readSpan, readSince    atomic.Int64
	writeDL, writeSpan, writeSince atomic.Int64
	// bodyIdle makes a client read overdue after readSpan without
	// progress as well as after readDL: a request body is read under an
	// idle timeout within an overall bound.
	bodyIdle atomic.Bool

	timedOut atomic.Bool
	closed   atomic.Bool

	// The request phase of a client connection, touched only by the
	// goroutine that serves it (fasthttp calls Read, SetReadDeadline and
	// the ConnState hook from there). awaitHead is set from the first
	// byte of a request until its header has been read; head while the
	// connection reads a header block, which scan checks for bare LFs.
	awaitHead bool
	head      headScan
}

// clientLimits are the client side's phase timeouts and the connection
// count that the listener keeps.
type clientLimits struct {
	header, bodyIdle time.Duration
	// write is how long each write to the client may wait for progress;
	// zero is no limit.
	write time.Duration
	// writeTimeouts counts the connections closed because a write to the
	// client overran write. If nil, none are counted.
	writeTimeouts prometheus.Counter
	open          atomic.Int64
}

// writeTimeout gives c the client write timeout: from now on each write
// may wait cl.write for progress.
func (cl *clientLimits) writeTimeout(c *watchConn) {
	if cl.write <= 0 {
		return
	}
	c.writeSpan.Store(int64(cl.write))
	c.writeDL.Store(1)
}

// headerDeadline gives c the header timeout from now; zero is none.
// It reads the coarse clock: this runs for every request.
func (cl *clientLimits) headerDeadline(c *watchConn) {
	if cl.header <= 0 {
		c.readDL.Store(0)
		return
	}
	c.readSpan.Store(int64(cl.header))
	c.readDL.Store(coarseNow() + int64(cl.header))
}

// bodyTimeout bounds a whole request body, however steadily it arrives.
const bodyTimeout = 10 * time.Minute

func (c *watchConn) overdue(now int64) bool {
	return c.readOverdue(now) || c.writeOverdue(now)
}

// writeOverdue is whether a pending write has overrun. Writes are always
// under an idle timeout, on both sides: an answer may take as long as it
// keeps moving.
func (c *watchConn) writeOverdue(now int64) bool {
	return pastDue(now, true, c.writeDL.Load(), c.writeSpan.Load(), c.writeSince.Load())
}

func (c *watchConn) readOverdue(now int64) bool {
	dl, since := c.readDL.Load(), c.readSince.Load()
	if c.bodyIdle.Load() && since != 0 && dl != 0 && now-since > c.readSpan.Load() {
		return true
	}
	return pastDue(now, c.idle, dl, c.readSpan.Load(), since)
}

// expire ends an overrun wait. A client connection whose read overran is
// not closed but has its read cut short, so that the server can still
// answer 408; any other overrun closes the connection.
func (c *watchConn) expire(now int64) {
	c.timedOut.Store(true)
	if c.cl != nil && c.readOverdue(now) {
		_ = c.Conn.SetReadDeadline(aLongTimeAgo)
		return
	}
	if c.cl != nil && c.writeOverdue(now) {
		if c.cl.writeTimeouts != nil && !c.closed.Load() {
			c.cl.writeTimeouts.Inc()
		}
		// A client that stopped reading would otherwise keep the unsent
		// answer in the kernel, and the connection open, until it reads
		// or goes: reset it instead, as nginx's reset_timedout_connection.
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	_ = c.Conn.Close()
}

var aLongTimeAgo = time.Unix(1, 0)

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

// requestBegins is the ConnState hook's StateActive, at the first byte of
// a request: its header must arrive within the header timeout. The server
// sets no read deadline of its own for headers (its ReadTimeout is zero);
// the next one it sets comes from HeaderReceived and starts the body.
func (c *watchConn) requestBegins() {
	c.awaitHead = true
	c.bodyIdle.Store(false)
	c.cl.headerDeadline(c)
}

// requestDone is the ConnState hook's StateIdle: the next bytes are the
// next request's header block.
func (c *watchConn) requestDone() {
	c.awaitHead = false
	// Bytes of the next request may already be buffered, unseen; taking
	// the last of them for a CR errs towards letting a bare LF through
	// (to the header timeout) rather than refusing a sound request.
	c.head = headScan{on: true, prevCR: true}
}

func (c *watchConn) SetReadDeadline(t time.Time) error {
	if c.awaitHead {
		if t.IsZero() {
			// The server clears its idle deadline at a request's first
			// byte; the header timeout set then stays.
			return nil
		}
		// HeaderReceived's deadline: the header is in, the body follows.
		c.awaitHead = false
		c.head.on = false
		c.readSpan.Store(int64(c.cl.bodyIdle))
		c.readDL.Store(coarseNow() + int64(bodyTimeout))
		c.bodyIdle.Store(c.cl.bodyIdle > 0)
		return nil
	}
	c.bodyIdle.Store(false)
	setDeadline(t, &c.readDL, &c.readSpan)
	return nil
}

func (c *watchConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() && c.cl != nil {
		// Clearing a client connection's deadline (fasthttp does after a
		// hijack) leaves the client write timeout, not none.
		c.writeDL.Store(0)
		c.cl.writeTimeout(c)
		return nil
	}
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
	if c.head.bad {
		return 0, errBareLF
	}
	watched := c.readDL.Load() != 0
	if watched {
		c.readSince.Store(coarseNow())
	}
	n, err := c.read(b)
	if watched {
		c.readSince.Store(0)
	}
	if err != nil && c.timedOut.Load() {
		err = errWatchdogTimeout
	}
	if c.head.on && n > 0 {
		if i := c.head.scan(b[:n]); i >= 0 {
			// The header block is refused: the server gets the bytes
			// before the bare LF, then errBareLF, and answers 400.
			if i == 0 {
				return 0, errBareLF
			}
			return i, nil
		}
	}
	return n, err
}

// read reads from the connection, with raw I/O where it has it.
func (c *watchConn) read(b []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Read(b)
	}
	return c.Conn.Read(b)
}

// write writes to the connection, with raw I/O where it has it.
func (c *watchConn) write(b []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Write(b)
	}
	return c.Conn.Write(b)
}

// errBareLF is the read error of a header block with a line that ends in a
// bare LF. HTTP/1.1 ends lines with CRLF (RFC 9112 §2.2); fasthttp would
// wait for a CRLF CRLF that never comes until the header timeout, and
// servers that disagree on where such a line ends can be made to read two
// different requests.
var errBareLF = errors.New("a header line ends in a bare LF")

// headScan follows a request's header block across reads, from the end of
// the previous request to the blank line that ends the block.
type headScan struct {
	on, bad bool
	// prevCR is whether the last byte seen was CR; lineLen counts the
	// bytes of the current line so far, its CR included.
	prevCR  bool
	lineLen int
}

// scan checks the next bytes of the header block. It returns the index
// of a bare LF in b, or -1; it stops looking at the blank line that ends
// the block, where the body begins.
func (s *headScan) scan(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			s.lineLen += len(b) - i
			s.prevCR = b[len(b)-1] == '\r'
			return -1
		}
		k := i + j
		cr := s.prevCR && j == 0 || j > 0 && b[k-1] == '\r'
		if !cr {
			s.bad = true
			s.on = false
			return k
		}
		s.lineLen += j
		if s.lineLen == 1 {
			// CRLF alone: the blank line. What follows is the body.
			s.on = false
			return -1
		}
		s.lineLen, s.prevCR = 0, false
		i = k + 1
	}
	return -1
}

// Write writes b. Under a timeout it writes at most writePiece bytes at a
// time and restarts the wait after each: a net.Conn's Write returns only
// when all of b is out, and a large b to a peer that reads slowly but
// steadily would otherwise overrun the idle span while it makes progress.
func (c *watchConn) Write(b []byte) (int, error) {
	if c.writeDL.Load() == 0 {
		n, err := c.write(b)
		return n, c.writeErr(err)
	}
	var n int
	for n < len(b) {
		c.writeSince.Store(coarseNow())
		m, err := c.write(b[n:min(len(b), n+writePiece)])
		n += m
		if err != nil {
			c.writeSince.Store(0)
			return n, c.writeErr(err)
		}
	}
	c.writeSince.Store(0)
	return n, nil
}

// writePiece is the most a watched Write hands the socket at once.
const writePiece = 16 << 10

// writeErr is a write's error, the watchdog's timeout when it closed the
// connection.
func (c *watchConn) writeErr(err error) error {
	if err != nil && c.timedOut.Load() {
		return errWatchdogTimeout
	}
	return err
}

func (c *watchConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.w.mu.Lock()
		delete(c.w.conns, c)
		c.w.mu.Unlock()
		if c.cl != nil {
			c.cl.open.Add(-1)
		}
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

// connState is the data plane's ConnState hook: it moves a client
// connection between the phases of a request.
func connState(c net.Conn, s fasthttp.ConnState) {
	wc, ok := c.(*watchConn)
	if !ok || wc.cl == nil {
		return
	}
	switch s {
	case fasthttp.StateActive:
		wc.requestBegins()
	case fasthttp.StateIdle:
		wc.requestDone()
	}
}

// listener wraps ln for the data plane.
func (p *Plane) listener(ln net.Listener) *watchListener {
	return &watchListener{Listener: ln, w: p.dog, cl: p.clients, max: int64(p.maxConns), refused: p.conns.refused}
}

// watchListener wraps accepted connections, and refuses those over the
// connection limit.
type watchListener struct {
	net.Listener
	w  *watchdog
	cl *clientLimits
	// max is the most client connections open at once; 0 is no limit.
	max     int64
	refused prometheus.Counter
}

func (l *watchListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max > 0 && l.cl.open.Load() >= l.max {
			l.refused.Inc()
			refuse(c)
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetKeepAlive(true)
			_ = tc.SetKeepAlivePeriod(30 * time.Second)
		}
		wc := l.w.wrap(c, false)
		wc.cl = l.cl
		l.cl.open.Add(1)
		wc.head.on = true
		// The first byte, and the header with it, must come within the
		// header timeout; requestBegins restarts it at the first byte.
		l.cl.headerDeadline(wc)
		l.cl.writeTimeout(wc)
		return wc, nil
	}
}

// refusal is the answer to a connection over the limit: a 503 problem,
// and the connection closed.
var refusal = func() []byte {
	body, _ := json.Marshal(httpx.NewProblem(fasthttp.StatusServiceUnavailable, "too-many-connections", "Too many connections",
		"the proxy serves as many connections as it can; try again shortly"))
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: %s\r\nContent-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
		httpx.ContentTypeProblem, len(body), body)
}()

// refuse answers c with the refusal and closes it. The write goes to an
// empty socket buffer and does not wait; the deadline is for a peer that
// has already gone.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(refusal)
	_ = c.Close()
}

// connMetrics count the client connections.
type connMetrics struct {
	refused prometheus.Counter
}

// newConnMetrics registers the connection series on reg: the refused
// count, the open connections of cl, and the accept errors ln retried.
// retries reads the data plane listener's accept retries, zero before Run
// opens it.
func newConnMetrics(reg prometheus.Registerer, cl *clientLimits, retries func() int64) *connMetrics {
	m := &connMetrics{refused: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strangler_proxy_connections_refused_total",
		Help: "Client connections refused with 503 because max_connections were open.",
	})}
	reg.MustRegister(m.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strangler_proxy_connections_open",
			Help: "Client connections open on the data plane.",
		}, func() float64 { return float64(cl.open.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strangler_proxy_accept_retries_total",
			Help: "Accepts on the data plane that failed with a temporary error (such as out of file descriptors) and were tried again.",
		}, func() float64 { return float64(retries()) }))
	return m
}

// connectionLimit resolves max_connections: a positive value is the
// limit, -1 none, and 0 one derived from the open-file limit. Every client
// connection may hold a backend connection too, and the proxy keeps
// fdReserve descriptors for its files, listeners, admin clients and idle
// backend connections, so half of the rest may be clients.
func connectionLimit(configured int) int {
	if configured != 0 {
		return max(configured, 0)
	}
	n := openFileLimit()
	if n <= 0 {
		return 0
	}
	return max((n-fdReserve)/2, minDerivedConns)
}

const (
	fdReserve       = 128
	minDerivedConns = 16
)

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
