package dataplane

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// serveUpgrade relays a WebSocket handshake and, once the backend agrees
// (101), splices the two connections until either side closes. Upgrades
// follow the route's mode like any request, except that shadow mode serves
// them from legacy without a copy: a conversation cannot be replayed.
func (p *Plane) serveUpgrade(st *reqState) {
	ctx := st.ctx
	rt := st.rt
	be, reason := rt.decide(st)
	st.reason = reason + "_upgrade"
	st.backend = be.name
	in, err := be.pick(nil)
	if err != nil {
		p.backendError(st, err)
		return
	}
	t0 := time.Now()
	conn, err := dialInstance(in)
	if err != nil {
		p.backendError(st, err)
		return
	}
	handshakeDone := false
	defer func() {
		if !handshakeDone {
			_ = conn.Close()
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(rt.Timeout))
	h := &ctx.Request.Header
	b := append(st.scratch[:0], st.forwarded()...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		b = append(b, '?')
		b = append(b, q...)
	}
	h.SetRequestURIBytes(b)
	st.scratch = b[:0]
	if !be.spec.PreserveHost {
		h.SetHostBytes(in.hostHdr)
	}
	bw := bufio.NewWriter(conn)
	if err := h.Write(bw); err != nil || bw.Flush() != nil {
		p.backendError(st, err)
		return
	}
	br := bufio.NewReader(conn)
	resp := &ctx.Response
	if err := resp.Header.Read(br); err != nil {
		p.backendError(st, err)
		return
	}
	st.upstream = time.Since(t0)
	st.status = resp.StatusCode()
	if st.status != fasthttp.StatusSwitchingProtocols {
		// The backend refused the upgrade: relay its answer as is.
		if err := resp.ReadBody(br, 16<<20); err != nil {
			p.backendError(st, err)
			return
		}
		p.cleanResponse(st)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	head := append([]byte(nil), resp.Header.Header()...)
	var early []byte
	if n := br.Buffered(); n > 0 {
		early, _ = br.Peek(n)
		early = append([]byte(nil), early...)
	}
	handshakeDone = true
	ctx.HijackSetNoResponse(true)
	raw := ctx.Conn()
	ctx.Hijack(func(hj net.Conn) {
		defer conn.Close()
		client := &hijacked{Conn: hj, raw: raw}
		if !p.splices.add(client, conn) {
			return // Run is ending
		}
		defer p.splices.done(client, conn)
		p.m.wsActive.Inc()
		defer p.m.wsActive.Dec()
		if _, err := client.Write(head); err != nil {
			return
		}
		if len(early) > 0 {
			if _, err := client.Write(early); err != nil {
				return
			}
		}
		splice(client, conn)
	})
}

// splice copies both ways until one side ends, then closes both so that
// the other copy ends too.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	// Give the other direction a moment to finish its close handshake.
	t := time.NewTimer(5 * time.Second)
	select {
	case <-done:
		t.Stop()
		_ = a.Close()
		_ = b.Close()
		return
	case <-t.C:
	}
	_ = a.Close()
	_ = b.Close()
	<-done
}

// hijacked is a hijacked client connection whose Close closes the
// connection under it: fasthttp's own Close does nothing until the hijack
// handler returns, which would leave a splice blocked reading the client
// after the backend's side ended. Reads still go through fasthttp's
// buffered reader.
type hijacked struct {
	net.Conn
	raw net.Conn
}

func (h *hijacked) Close() error { return h.raw.Close() }

// CloseWrite half-closes the client's connection, for the splice.
func (h *hijacked) CloseWrite() error {
	if cw, ok := h.raw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// spliceSet tracks the upgraded connections being relayed, so that Run
// closes them when it ends: fasthttp's shutdown does not wait for
// hijacked connections, and a splice would outlive the proxy.
type spliceSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add registers a splice's two connections, and reports false once the
// set is closed, when the splice must not start.
func (s *spliceSet) add(a, b net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[a], s.conns[b] = struct{}{}, struct{}{}
	s.wg.Add(1)
	return true
}

// done removes a splice that ended.
func (s *spliceSet) done(a, b net.Conn) {
	s.mu.Lock()
	delete(s.conns, a)
	delete(s.conns, b)
	s.mu.Unlock()
	s.wg.Done()
}

// closeAll closes every splice's connections, refuses new splices and
// waits for the splices to end.
func (s *spliceSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// dialInstance connects to an instance for an upgrade, as the pools do,
// and makes the TLS handshake within the connect timeout.
func dialInstance(in *instance) (net.Conn, error) {
	c, err := in.dial(0)
	if err != nil {
		return nil, err
	}
	if in.tls {
		tc := tls.Client(c, in.tlsConfig)
		_ = tc.SetDeadline(time.Now().Add(in.b.spec.ConnectTimeout))
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return nil, &dialError{err}
		}
		return tc, nil
	}
	return c, nil
}
