package dataplane

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/discover"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Decision reasons, as the access log shows them.
const (
	reasonLegacy          = "legacy"
	reasonShadow          = "shadow"
	reasonCanaryCandidate = "canary_candidate"
	reasonCanaryLegacy    = "canary_legacy"
	reasonExtracted       = "extracted"
	reasonNoRoute         = "no_route"
	reasonNoTable         = "no_table"
	reasonRejected        = "rejected"
)

// Canonical header names, set without normalizing on the hot path.
var (
	hdrXFF         = []byte("X-Forwarded-For")
	hdrXFProto     = []byte("X-Forwarded-Proto")
	hdrXFHost      = []byte("X-Forwarded-Host")
	hdrRequestID   = []byte("X-Request-Id")
	hdrTraceparent = []byte("Traceparent")
	valHTTP        = []byte("http")
	valHTTPS       = []byte("https")
)

var fallbackDecision = [fbCount]string{"fallback_unreachable", "fallback_breaker_open", "fallback_no_instance", "fallback_5xx", "fallback_error"}

// refusedDecision are the decisions of the requests that their module's
// fallback policy kept from legacy, by fallback reason.
var refusedDecision = [fbCount]string{"no_fallback_unreachable", "no_fallback_breaker_open", "no_fallback_no_instance", "no_fallback_5xx", "no_fallback_error"}

// reqState is the per-request scratch space, pooled so that the common path
// allocates nothing. It also adapts the request to routes.Request.
type reqState struct {
	ctx      *fasthttp.RequestCtx
	scan     headerScan
	path     []byte
	host     []byte
	body     []byte
	reqID    []byte
	trace    []byte
	scratch  []byte
	tmpl     []byte // the path's template, for the inventory
	line     []byte
	query    []byte // the access log's redacted query
	key      []byte // the sticky key, once keyDone
	client   netip.Addr
	peer     netip.Addr
	close    bool
	replay   bool // the body is in memory and may be sent again
	upgrade  bool
	bodyErr  *bodyReader
	reason   string
	backend  string
	status   int
	rt       *routeRT
	table    *runtimeTable
	shadow   *shadowJob
	start    time.Time
	end      time.Time
	upstream time.Duration
	keyDone  bool
	// issueCohort marks a request without a valid cohort cookie, whose
	// answer gets one.
	issueCohort bool
	// pathChanged is set when normalising changed the path: the backend
	// gets the normalised one unless the route forwards it as is.
	pathChanged bool
}

var statePool = sync.Pool{New: func() any {
	return &reqState{path: make([]byte, 0, 256), scratch: make([]byte, 0, 256), tmpl: make([]byte, 0, 2*discover.MaxTemplateLen), reqID: make([]byte, 0, 64), trace: make([]byte, 0, 64), line: make([]byte, 0, 512), query: make([]byte, 0, 128), key: make([]byte, 0, 64)}
}}

func (s *reqState) reset(ctx *fasthttp.RequestCtx) {
	s.ctx = ctx
	s.scan = headerScan{}
	s.path = s.path[:0]
	s.host = s.host[:0]
	s.body = s.body[:0]
	s.reqID = s.reqID[:0]
	s.trace = s.trace[:0]
	s.scratch = s.scratch[:0]
	s.close, s.replay, s.upgrade = false, false, false
	s.key, s.keyDone, s.issueCohort, s.pathChanged = s.key[:0], false, false, false
	s.bodyErr = nil
	s.reason, s.backend, s.status = "", "", 0
	s.rt, s.table, s.shadow = nil, nil, nil
	s.upstream = 0
	s.start, s.end = time.Time{}, time.Time{}
}

func (s *reqState) release() {
	s.ctx = nil
	if cap(s.body) > 1<<20 {
		s.body = nil // let a large buffer go
	}
	statePool.Put(s)
}

func (s *reqState) Method() []byte            { return s.ctx.Request.Header.Method() }
func (s *reqState) Host() []byte              { return s.host }
func (s *reqState) Path() []byte              { return s.path }
func (s *reqState) Header(name string) []byte { return s.ctx.Request.Header.Peek(name) }
func (s *reqState) Query(name string) []byte  { return s.ctx.QueryArgs().Peek(name) }
func (s *reqState) Cookie(name string) []byte { return s.ctx.Request.Header.Cookie(name) }

// serve is the data plane's request handler.
func (p *Plane) serve(ctx *fasthttp.RequestCtx) {
	st := statePool.Get().(*reqState)
	st.reset(ctx)
	defer st.release()
	st.table = p.table.Load()

	if !p.sanitize(st) {
		p.finish(st)
		return
	}
	if st.table.t == nil {
		st.reason = reasonNoTable
		p.problem(st, fasthttp.StatusServiceUnavailable, "no-table", "No route table", "the proxy has not loaded a route table from its control store yet")
		p.finish(st)
		return
	}
	rt := st.table.match(st)
	if rt == nil {
		st.reason = reasonNoRoute
		p.problem(st, fasthttp.StatusNotFound, "no-route", "No route", "no route of the proxy matches this request")
		p.finish(st)
		return
	}
	st.rt = rt
	if !p.forwardPath(st) {
		p.finish(st)
		return
	}
	if rt.sticky.cohort != nil {
		rt.stickyKey(st)
	}
	if !p.readBody(st) {
		p.finish(st)
		return
	}
	if st.upgrade {
		p.serveUpgrade(st)
		p.finish(st)
		return
	}

	primary, reason := rt.decide(st)
	st.reason = reason
	if reason == reasonShadow {
		st.shadow = p.shadow.prepare(st)
	}
	idem := routes.IsIdempotent(ctx.Request.Header.Method())
	res := p.tryBackend(st, primary, idem)
	served := primary
	if primary == rt.candidate {
		if fb := fallbackReason(res, idem && st.replay); fb >= 0 && !rt.Fallback.Allows(ctx.Request.Header.Method()) {
			if p.refuseFallback(st, res, fb) {
				p.finish(st)
				return
			}
		} else if fb >= 0 {
			if res.err == nil {
				_ = ctx.Response.CloseBodyStream()
			}
			if !res.breakerOpen && !errors.Is(res.err, errNoInstance) {
				// The candidate was tried: its answer, or its failure to
				// give one, counts under it as legacy's counts under
				// legacy.
				rt.mCandidate.count(res.status, st.upstream)
			}
			rt.fallbacks[fb].Inc()
			rt.fbTotal.Add(1)
			st.reason = fallbackDecision[fb]
			res = p.tryBackend(st, rt.legacy, idem)
			served = rt.legacy
		}
	}
	st.backend = served.name
	if res.err != nil {
		st.shadow.cancel()
		st.shadow = nil
		p.backendError(st, res.err)
		p.finish(st)
		return
	}
	if st.shadow != nil {
		p.shadow.attach(st)
	}
	st.status = ctx.Response.StatusCode()
	p.cleanResponse(st)
	if st.issueCohort {
		rt.sticky.cohort.set(st, st.key)
	}
	if st.bodyErr != nil && !st.bodyErr.complete() {
		// The backend answered before it read the whole body; the client
		// may still be sending it, and must get the answer first.
		lingerClose(ctx)
	}
	p.finish(st)
}

// sanitize applies the request hygiene that comes before routing: framing,
// path, hop-by-hop and internal headers, forwarding headers, request ID and
// trace context. It writes the error and returns false for a request it
// refuses.
func (p *Plane) sanitize(st *reqState) bool {
	ctx := st.ctx
	h := &ctx.Request.Header
	scanHeaders(h.RawHeaders(), &st.scan, p.internal)
	sc := &st.scan
	// Ambiguous framing (RFC 9112 §6.3): a request with both
	// Transfer-Encoding and Content-Length is how requests are smuggled.
	// fasthttp already refuses duplicate Content-Length and unknown
	// transfer codings.
	if sc.flags&hTransferEncoding != 0 && sc.contentLengths > 0 {
		p.reject(st, "ambiguous_framing", "request has both Transfer-Encoding and Content-Length")
		return false
	}
	if sc.contentLengths > 1 {
		p.reject(st, "ambiguous_framing", "request has more than one Content-Length")
		return false
	}
	// A folded header line is read as part of the previous header by some
	// parsers and as a header of its own by others; RFC 9112 §5.2 lets a
	// server refuse it, which leaves no room for either reading.
	if sc.flags&hObsFold != 0 {
		p.reject(st, "obs_fold", "request has a header folded over two lines")
		return false
	}
	raw := ctx.URI().PathOriginal()
	var ok bool
	st.path, st.pathChanged, ok = routes.NormalizePath(st.path[:0], raw)
	if !ok {
		p.reject(st, "bad_path", "the request path is not an absolute path with valid escapes")
		return false
	}
	st.host = append(st.host[:0], h.Host()...)

	st.close = h.ConnectionClose()
	st.upgrade = sc.flags&hUpgrade != 0 && h.ConnectionUpgrade() && fold(h.Peek("Upgrade"), "websocket")
	if sc.flags&hConnection != 0 {
		stripConnectionListed(h, st.upgrade)
	}
	if st.close {
		h.ResetConnectionClose()
	}
	if sc.flags&hKeepAlive != 0 {
		h.Del("Keep-Alive")
	}
	if sc.flags&hProxyConnection != 0 {
		h.Del("Proxy-Connection")
	}
	if sc.flags&hProxyAuth != 0 {
		h.Del("Proxy-Authenticate")
		h.Del("Proxy-Authorization")
	}
	if sc.flags&hTE != 0 {
		h.Del("TE")
	}
	if sc.flags&hTrailer != 0 {
		h.Del("Trailer")
	}
	if sc.flags&hUpgrade != 0 && !st.upgrade {
		h.Del("Upgrade")
	}
	if sc.flags&hExpect != 0 {
		// The server already answered 100-continue; the backend gets
		// the body without waiting.
		h.Del("Expect")
	}
	for i := 0; i < sc.ndel; i++ {
		h.DelBytes(sc.del[i])
	}
	if sc.overflow {
		p.sweepInternal(h)
	}
	if sc.flags&hForwarded != 0 {
		h.Del("Forwarded")
	}
	if sc.flags&hRealIP != 0 {
		h.Del("X-Real-Ip")
	}

	// X-Forwarded-*: extended when the peer is a trusted proxy, replaced
	// otherwise.
	st.peer = peerAddr(ctx)
	trusted := len(p.trusted) > 0 && p.trusted.contains(st.peer)
	st.client = st.peer
	b := st.scratch[:0]
	if trusted && sc.flags&hXFF != 0 {
		xff := h.Peek("X-Forwarded-For")
		st.client = clientAddr(xff, st.peer, p.trusted)
		b = append(b, xff...)
		b = append(b, ", "...)
	}
	b = st.peer.AppendTo(b)
	h.SetCanonical(hdrXFF, b)
	st.scratch = b[:0]
	if !trusted || sc.flags&hXFProto == 0 {
		if ctx.IsTLS() {
			h.SetCanonical(hdrXFProto, valHTTPS)
		} else {
			h.SetCanonical(hdrXFProto, valHTTP)
		}
	}
	if (!trusted || sc.flags&hXFHost == 0) && len(st.host) > 0 {
		h.SetCanonical(hdrXFHost, st.host)
	}

	if sc.flags&hRequestID != 0 {
		if id := h.Peek("X-Request-Id"); validRequestID(id) {
			st.reqID = append(st.reqID[:0], id...)
		}
	}
	if len(st.reqID) == 0 {
		st.reqID = appendRequestID(st.reqID[:0])
		h.SetCanonical(hdrRequestID, st.reqID)
	}
	var in []byte
	if sc.flags&hTraceparent != 0 {
		in = h.Peek("Traceparent")
	}
	st.trace = nextTraceparent(st.trace[:0], in)
	h.SetCanonical(hdrTraceparent, st.trace)
	return true
}

// forwardPath sets the path the backend receives, once the route is
// known: the normalised one, which was matched, or with path_handling
// as_is the client's own, which must then have no dot segment. It writes
// the error and returns false for a path it refuses.
func (p *Plane) forwardPath(st *reqState) bool {
	uri := st.ctx.URI()
	if st.rt.PathAsIs {
		if routes.HasDotSegment(uri.PathOriginal()) {
			p.reject(st, "dot_segment", "the request path has a dot segment, which this route forwards as it is")
			return false
		}
		return true
	}
	if st.pathChanged {
		uri.SetPathBytes(st.path)
	}
	return true
}

// forwarded returns the path the backend receives: the client's own for
// a route with path_handling as_is, else the normalised one.
func (s *reqState) forwarded() []byte {
	if s.rt != nil && s.rt.PathAsIs {
		return s.ctx.URI().PathOriginal()
	}
	return s.path
}

// sweepInternal removes internal headers when a request carries more than
// scanHeaders collects.
func (p *Plane) sweepInternal(h *fasthttp.RequestHeader) {
	var names [][]byte
	for k := range h.All() {
		if p.internal.dropped(k) {
			names = append(names, append([]byte(nil), k...))
		}
	}
	for _, n := range names {
		h.DelBytes(n)
	}
}

// clientError is a failure on the client's side of an exchange: its
// streamed body broke off, was malformed, timed out or went over
// max_body_bytes. It wraps the cause. A client error never counts against
// a backend: its breaker excludes it, outlier ejection does not see it and
// it neither retries nor falls back.
type clientError struct{ err error }

func (e *clientError) Error() string { return "client request body: " + e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// isClientError reports whether err is a client's fault. The breaker asks
// after every exchange, mostly with nil, which must not allocate.
func isClientError(err error) bool {
	if err == nil {
		return false
	}
	var ce *clientError
	return errors.As(err, &ce)
}

// bodyReader wraps a streamed request body to cap it and to tell a broken
// client body (400, 413) from a broken backend (502): every error it
// returns is a *clientError.
type bodyReader struct {
	r    io.Reader
	left int64
	// known is set for a body with a Content-Length, which the client
	// must send whole: an end before it is the client's fault.
	known bool
	done  bool  // read to its end
	err   error // the *clientError, once the body broke
}

var errBodyTooLarge = errors.New("request body over the limit")

func (b *bodyReader) fail(err error) error {
	b.err = &clientError{err}
	return b.err
}

// complete reports whether the whole body was read.
func (b *bodyReader) complete() bool { return b.done || b.known && b.left == 0 }

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		// Read one byte more to tell "exactly at the limit" from "over".
		var one [1]byte
		n, err := b.r.Read(one[:])
		switch {
		case n > 0:
			return 0, b.fail(errBodyTooLarge)
		case err == io.EOF:
			b.done = true
		case err != nil:
			return 0, b.fail(err)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF && b.known && b.left > 0:
		return n, b.fail(io.ErrUnexpectedEOF)
	case err == io.EOF:
		b.done = true
	case err != nil:
		return n, b.fail(err)
	}
	return n, err
}

// fault returns the *clientError behind err, a failed exchange that sent
// b, or nil when the backend's side failed. b keeps its error, so that it
// is found even where the writer lost it. b may be nil: a body in memory
// cannot break.
func (b *bodyReader) fault(err error) error {
	switch {
	case err == nil:
		return nil
	case b != nil && b.err != nil:
		return b.err
	case isClientError(err):
		return err
	}
	return nil
}

// readBody reads small bodies whole, so that they can be sent again, and
// sets up streaming for large ones.
func (p *Plane) readBody(st *reqState) bool {
	ctx := st.ctx
	cl := ctx.Request.Header.ContentLength()
	if cl == 0 || cl == -2 {
		// No body. Drop the empty stream so the request is written plainly.
		if ctx.Request.IsBodyStream() {
			ctx.Request.SetBodyRaw(nil)
		}
		st.replay = true
		return true
	}
	if int64(cl) > p.cfg.MaxBodyBytes {
		p.reject413(st)
		return false
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		// Already in memory.
		st.replay = true
		return true
	}
	limit := p.cfg.BufferBodyBytes
	if cl > 0 && cl <= limit {
		if cap(st.body) < cl {
			st.body = make([]byte, cl)
		}
		st.body = st.body[:cl]
		if _, err := io.ReadFull(stream, st.body); err != nil {
			p.rejectBody(st, err, "the request body ended before its Content-Length")
			return false
		}
		ctx.Request.SetBodyRaw(st.body)
		st.replay = true
		return true
	}
	if cl == -1 {
		// Chunked: read up to the buffer limit; a body that ends within it
		// is sent with a Content-Length, and a bad chunk is refused before
		// anything is forwarded.
		stream = &noTrailers{r: stream, h: &ctx.Request.Header}
		if cap(st.body) < limit+1 {
			st.body = make([]byte, limit+1)
		}
		buf := st.body[:limit+1]
		n, err := io.ReadFull(stream, buf)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			st.body = buf[:n]
			ctx.Request.SetBodyRaw(st.body)
			ctx.Request.Header.SetContentLength(n)
			st.replay = true
			return true
		case err != nil:
			p.rejectBody(st, err, "the request body's chunked encoding is malformed")
			return false
		}
		st.body = buf[:n]
		rest := &bodyReader{r: io.MultiReader(bytes.NewReader(st.body), stream), left: p.cfg.MaxBodyBytes}
		st.bodyErr = rest
		ctx.Request.SetBodyStream(rest, -1)
		return true
	}
	rest := &bodyReader{r: stream, left: int64(cl), known: true}
	st.bodyErr = rest
	ctx.Request.SetBodyStream(rest, cl)
	return true
}

// attemptResult is the outcome of sending a request to one backend.
type attemptResult struct {
	err         error
	sent        bool // the request may have reached the backend
	breakerOpen bool
	// client is set when the exchange failed on the client's side: err
	// is then its *clientError.
	client bool
	status int
}

var (
	errBreakerOpen = errors.New("circuit breaker open")
	errFailed      = errors.New("backend failed")
)

// tryBackend sends the request to an instance of be, and retries on another
// instance after a connection error, a timeout, 502, 503 or 504 while the
// route allows, the request can be sent again and the budget holds.
func (p *Plane) tryBackend(st *reqState, be *backend, idem bool) attemptResult {
	ctx := st.ctx
	rt := st.rt
	resp := st.respFor()
	be.budget.deposit()
	var skip *instance
	for try := 0; ; try++ {
		in, err := be.pick(skip)
		if err != nil {
			return attemptResult{err: err}
		}
		p.prepareAttempt(st, be, in)
		hc := in.client(rt.Timeout)
		var res attemptResult
		failed := false
		// attempt is one exchange; the breaker counts it failed for a
		// connection error, a timeout, 502, 503 or 504. The closure does
		// not escape, so it costs no allocation.
		attempt := func() (struct{}, error) {
			in.inflight.Add(1)
			t0 := time.Now()
			if st.start.IsZero() {
				st.start = t0
			}
			err := hc.Do(&ctx.Request, resp)
			st.end = time.Now()
			st.upstream = st.end.Sub(t0)
			in.inflight.Add(-1)
			res = attemptResult{err: err, sent: err == nil || !isDialError(err)}
			if ce := st.bodyErr.fault(err); ce != nil {
				// The client's body broke while it was sent; the breaker
				// excludes the error.
				res.err, res.client = ce, true
				return struct{}{}, ce
			}
			failed = err != nil
			if err == nil {
				res.status = resp.StatusCode()
				failed = res.status == 502 || res.status == 503 || res.status == 504
			}
			if failed {
				return struct{}{}, errFailed
			}
			return struct{}{}, nil
		}
		if be.breaker != nil {
			if _, err := be.breaker.Execute(attempt); errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
				return attemptResult{err: errBreakerOpen, breakerOpen: true}
			}
		} else {
			_, _ = attempt()
		}
		err = res.err
		if res.client {
			return res // the client's body broke, not the backend
		}
		be.record(in, failed)
		if !failed || try >= rt.Retries {
			return res
		}
		if res.sent && !(idem && st.replay) {
			return res
		}
		if !res.sent && len(*be.instances.Load()) == 1 {
			return res // the only instance refused the connection
		}
		if !be.budget.withdraw() {
			p.m.budgetOut.WithLabelValues(be.name).Inc()
			return res
		}
		if err == nil {
			_ = resp.CloseBodyStream()
		}
		p.m.retries.WithLabelValues(be.name).Inc()
		skip = in
	}
}

// prepareAttempt adjusts the request for the chosen instance.
func (p *Plane) prepareAttempt(st *reqState, be *backend, in *instance) {
	req := &st.ctx.Request
	req.UseHostHeader = true
	if be.spec.PreserveHost && len(st.host) > 0 {
		req.Header.SetHostBytes(st.host)
	} else {
		req.Header.SetHostBytes(in.hostHdr)
	}
	uri := req.URI()
	if isHTTPS := string(uri.Scheme()) == "https"; isHTTPS != in.tls {
		if in.tls {
			uri.SetScheme("https")
		} else {
			uri.SetScheme("http")
		}
	}
	st.respFor().StreamBody = true
}

// fallbackReason says why legacy should serve a request the candidate
// failed, or -1 when it should not. A request that may have reached the
// candidate goes to legacy only if it is idempotent and its body can be
// sent again.
func fallbackReason(res attemptResult, resendable bool) int {
	switch {
	case res.client:
		return -1
	case res.breakerOpen:
		return fbBreakerOpen
	case errors.Is(res.err, errNoInstance):
		return fbNoInstance
	case res.err != nil && !res.sent:
		return fbUnreachable
	case res.err != nil && resendable:
		return fbError
	case res.err == nil && res.status >= 500 && resendable:
		return fbStatus5xx
	}
	return -1
}

// refuseFallback handles a request that would fall back to legacy under
// reason fb but whose module's policy does not allow it: it counts it and,
// when the candidate never got the request (unreachable, breaker open, no
// instance), answers 503 candidate-unavailable and returns true. A request
// that may have reached the candidate keeps its answer, or its error,
// which the caller relays as for a request that cannot fall back.
func (p *Plane) refuseFallback(st *reqState, res attemptResult, fb int) bool {
	rt := st.rt
	rt.refused[fb].Inc()
	st.reason = refusedDecision[fb]
	if res.sent {
		return false
	}
	cand := rt.candidate
	st.backend = cand.name
	var cause string
	retryAfter := 1
	switch fb {
	case fbBreakerOpen:
		cause = "is failing; its circuit breaker is open"
		retryAfter = max(1, int((cand.spec.Breaker.OpenFor.D()+time.Second-1)/time.Second))
	case fbNoInstance:
		cause = "has no healthy instance"
	default:
		cause = "could not be reached"
	}
	p.problem(st, fasthttp.StatusServiceUnavailable, "candidate-unavailable", "Candidate unavailable",
		"backend "+cand.name+" "+cause+", and module "+rt.Module+" does not let this request fall back to legacy (fallback: "+string(rt.Fallback)+")")
	st.ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfter))
	st.status = 0 // counted as "error" for the candidate
	return true
}

// cleanResponse strips hop-by-hop headers from the backend's answer and
// adds the request ID. One pass over the headers finds what to do, so that
// the common answer, which has none of them, costs no lookups.
func (p *Plane) cleanResponse(st *reqState) {
	resp := &st.ctx.Response
	h := &resp.Header
	h.ResetConnectionClose()
	var conn, keepAlive, proxyConn, upgrade, reqID bool
	for k := range h.All() {
		switch len(k) {
		case 7:
			upgrade = upgrade || fold(k, "upgrade")
		case 10:
			conn = conn || fold(k, "connection")
			keepAlive = keepAlive || fold(k, "keep-alive")
		case 12:
			reqID = reqID || fold(k, "x-request-id")
		case 16:
			proxyConn = proxyConn || fold(k, "proxy-connection")
		}
	}
	if conn {
		stripConnectionListed(h, false)
	}
	if keepAlive {
		h.Del("Keep-Alive")
	}
	if proxyConn {
		h.Del("Proxy-Connection")
	}
	if upgrade {
		h.Del("Upgrade")
	}
	if !reqID {
		h.SetCanonical(hdrRequestID, st.reqID)
	}
	if h.ContentLength() == -1 || string(h.ContentType()) == "text/event-stream" {
		// Streams reach the client as they arrive: headers now, then one
		// flush per chunk.
		resp.ImmediateHeaderFlush = true
	}
	if st.close {
		st.ctx.SetConnectionClose()
	}
}

// backendError answers for a backend that gave no answer.
func (p *Plane) backendError(st *reqState, err error) {
	var ce *clientError
	if errors.As(err, &ce) {
		// The client's fault, answered by the proxy: counted under its
		// status, not as the backend's error.
		if errors.Is(ce, errBodyTooLarge) {
			p.reject413(st)
		} else {
			p.rejectBody(st, ce, "the request body broke off or was malformed")
		}
		st.status = st.ctx.Response.StatusCode()
		return
	}
	switch {
	case errors.Is(err, fasthttp.ErrTimeout) || isTimeout(err):
		p.problem(st, fasthttp.StatusGatewayTimeout, "upstream-timeout", "Upstream timed out", "backend "+st.backend+" did not answer within "+st.rt.Timeout.String())
	case errors.Is(err, errBreakerOpen):
		p.problem(st, fasthttp.StatusServiceUnavailable, "breaker-open", "Upstream unavailable", "backend "+st.backend+" is failing; its circuit breaker is open")
	case errors.Is(err, errNoInstance):
		p.problem(st, fasthttp.StatusServiceUnavailable, "no-instance", "Upstream unavailable", "backend "+st.backend+" has no instance")
	default:
		p.problem(st, fasthttp.StatusBadGateway, "bad-gateway", "Bad gateway", "backend "+st.backend+" could not be reached or broke the connection")
	}
	st.status = 0 // counted as "error" for the backend
}

func (p *Plane) reject(st *reqState, reason, detail string) {
	st.reason = reasonRejected
	p.m.rejected.WithLabelValues(reason).Inc()
	p.problem(st, fasthttp.StatusBadRequest, "bad-request", "Bad request", detail)
	// After a framing error the connection's byte stream cannot be trusted.
	st.ctx.SetConnectionClose()
}

func (p *Plane) reject413(st *reqState) {
	st.reason = reasonRejected
	p.m.rejected.WithLabelValues("too_large").Inc()
	p.problem(st, fasthttp.StatusRequestEntityTooLarge, "too-large", "Request body too large",
		"the body exceeds the limit of "+strconv.FormatInt(p.cfg.MaxBodyBytes, 10)+" bytes")
	lingerClose(st.ctx)
}

// lingerClose ends the connection after the answer is sent, reading and
// discarding what the client still sends for a while first. Closing a
// socket with unread data resets it, and a client still writing its body
// would then lose the answer.
func lingerClose(ctx *fasthttp.RequestCtx) {
	ctx.Hijack(func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.CopyN(io.Discard, c, 64<<20)
	})
}

// finish records metrics and the access log line.
func (p *Plane) finish(st *reqState) {
	status := st.ctx.Response.StatusCode()
	if st.status == 0 && st.backend == "" {
		st.status = status
	}
	rt := st.rt
	if st.end.IsZero() {
		st.end = time.Now()
	}
	if rt != nil && st.backend != "" {
		rm, side := rt.mLegacy, sideLegacy
		if rt.candidate != nil && st.backend == rt.candidate.name {
			rm, side = rt.mCandidate, sideCandidate
		}
		rm.count(st.status, st.upstream)
		rt.usage.observe(st.appendTemplate(), st.ctx.Request.Header.Method(), side, st.status, st.end.UnixNano())
	} else {
		p.unrouted[classOf(status)].Inc()
	}
	if p.access != nil {
		if st.start.IsZero() {
			st.start = st.end
		}
		p.access.log(st, status, st.end)
	}
}

// count records one exchange with a route's backend: its status, 0 when it
// gave no answer, and the time to its answer.
func (rm *routeMetrics) count(status int, upstream time.Duration) {
	cls := classOf(status)
	rm.requests[cls].Inc()
	rm.duration[cls].Observe(upstream.Seconds())
}

// decide picks the backend that serves a request.
func (rt *routeRT) decide(st *reqState) (*backend, string) {
	switch rt.Mode {
	case routes.ModeShadow:
		return rt.legacy, reasonShadow
	case routes.ModeCanary:
		if rt.candidate != nil && bucket(rt.salt, rt.stickyKey(st)) < uint32(rt.Weight)*100 {
			return rt.candidate, reasonCanaryCandidate
		}
		return rt.legacy, reasonCanaryLegacy
	case routes.ModeExtracted:
		if rt.candidate != nil {
			return rt.candidate, reasonExtracted
		}
	}
	return rt.legacy, reasonLegacy
}

// bucket maps a key to 0..9999, stably across processes and restarts: a
// salted FNV-1a hash with a final avalanche (MurmurHash3's fmix64). A user
// whose bucket is below weight×100 is in the canary, so raising the weight
// only moves users from legacy to the candidate.
func bucket(salt uint64, key []byte) uint32 {
	h := salt
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h % 10000)
}

// saltFor derives a module's salt, so that modules pick different cohorts.
func saltFor(module string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(module); i++ {
		h ^= uint64(module[i])
		h *= 1099511628211
	}
	return h
}
