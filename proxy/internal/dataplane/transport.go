package dataplane

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// transport is the backends' fasthttp RoundTripper. It reads an answer's
// headers first and then decides: a body of known length up to bufferMax is
// read whole, which costs nothing beyond the read, and the connection goes
// straight back to the pool; a longer body, a chunked one or one delimited
// by the connection's end streams to the client through a pooled body
// reader that gives the connection back when the client has it all. The
// common small answer thus takes no allocation and no goroutine, and
// server-sent events, downloads and chunked answers still stream as they
// arrive. fasthttp's own transport streams every body when asked to, at a
// few allocations per request, or none.
//
// Each HostClient has one route timeout; the transport arms the watchdog
// with it (see conn.go) instead of setting runtime deadlines.
type transport struct {
	timeout   time.Duration
	bufferMax int
}

// unstreamedMax caps a body read whole for a caller that does not stream.
const unstreamedMax = 4 << 20

// errBadChunk is a malformed chunked body from a backend.
var errBadChunk = errors.New("malformed chunked body from the backend")

func (t *transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	stream := resp.StreamBody
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	t.arm(conn)

	// The request lets go of its body stream once written; its error tells
	// a broken client body from a broken backend.
	body, _ := req.BodyStream().(*bodyReader)
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	writeErr := err
	if writeErr != nil {
		if ce := body.fault(writeErr); ce != nil {
			// The client's body broke: there is nothing to wait for.
			hc.CloseConn(cc)
			return false, ce
		}
	}

	// After a failed write the answer is still read: a backend may answer
	// before it has read the whole body, such as a 413 for an upload over
	// its limit, and close; that answer is relayed as it was sent.
	br := hc.AcquireReader(conn)
	if err = readHeader(br, resp); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		if writeErr != nil {
			return true, writeErr
		}
		return true, err
	}
	closeConn := writeErr != nil || req.ConnectionClose() || resp.ConnectionClose()
	cl := resp.Header.ContentLength()
	if noBody(req, resp) {
		resp.SkipBody = true
		hc.ReleaseReader(br)
		releaseOrClose(hc, cc, closeConn)
		return false, nil
	}
	if cl >= 0 && (cl <= t.bufferMax || !stream) {
		resp.StreamBody = false
		if err = resp.ReadBody(br, 0); err != nil {
			hc.ReleaseReader(br)
			hc.CloseConn(cc)
			return false, err
		}
		hc.ReleaseReader(br)
		releaseOrClose(hc, cc, closeConn)
		return false, nil
	}
	if !stream {
		// A caller that wants the body in memory (health probes) gets
		// chunked and close-delimited bodies read whole.
		resp.StreamBody = false
		err = resp.ReadBody(br, unstreamedMax)
		if err == nil && cl == -1 {
			err = resp.Header.ReadTrailer(br)
		}
		hc.ReleaseReader(br)
		if err != nil || cl == -2 || closeConn {
			hc.CloseConn(cc)
		} else {
			hc.ReleaseConn(cc)
		}
		return false, err
	}
	// Not pooled: the server closes the stream, and a response that still
	// holds it (a shadow job's) may close it again later.
	bs := &bodyStream{}
	bs.init(hc, br, resp, cl, closeConn)
	bs.release = releaser(hc, cc)
	size := cl
	if size < 0 {
		// Chunked, or delimited by the connection's end: the client gets
		// it chunked.
		size = -1
	}
	resp.SetBodyStream(bs, size)
	return false, nil
}

// arm gives the watchdog the route timeout for the exchange about to
// start. A TLS connection wraps the watchConn and passes deadlines down.
func (t *transport) arm(conn net.Conn) {
	if wc, ok := conn.(*watchConn); ok {
		wc.arm(t.timeout)
		return
	}
	if t.timeout > 0 {
		d := time.Now().Add(t.timeout)
		_ = conn.SetWriteDeadline(d)
		_ = conn.SetReadDeadline(d)
	}
}

// releaseOrClose returns a connection to the pool, or closes it. The type
// of cc is fasthttp's unexported clientConn, which HostClient's methods
// take; a generic helper keeps that type.
func releaseOrClose[C interface{ Conn() net.Conn }](hc *fasthttp.HostClient, cc C, closeConn bool) {
	type releaser[T any] interface {
		ReleaseConn(T)
		CloseConn(T)
	}
	h, ok := any(hc).(releaser[C])
	if !ok {
		_ = cc.Conn().Close()
		return
	}
	if closeConn {
		h.CloseConn(cc)
	} else {
		h.ReleaseConn(cc)
	}
}

// readHeader reads the answer's header, skipping interim 1xx answers other
// than 101, as fasthttp's client does.
func readHeader(br *bufio.Reader, resp *fasthttp.Response) error {
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		code := resp.StatusCode()
		if code < 100 || code > 199 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n >= 5 {
			return errors.New("too many interim answers from the backend")
		}
	}
}

// noBody reports whether the answer has no body by its nature.
func noBody(req *fasthttp.Request, resp *fasthttp.Response) bool {
	if req.Header.IsHead() {
		return true
	}
	code := resp.StatusCode()
	return code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified
}

// bodyStream reads a backend's answer body from its connection as the
// server writes it to the client, decoding chunked framing, and gives the
// connection back when it is done.
type bodyStream struct {
	hc        *fasthttp.HostClient
	release   func(bool)
	br        *bufio.Reader
	resp      *fasthttp.Response
	left      int64 // bytes left: of the body (length known) or of the chunk
	chunked   bool
	untilEOF  bool
	done      bool
	err       error
	closeConn bool
	closed    bool
	sizeBuf   [32]byte
}

func (s *bodyStream) init(hc *fasthttp.HostClient, br *bufio.Reader, resp *fasthttp.Response, cl int, closeConn bool) {
	*s = bodyStream{hc: hc, br: br, resp: resp, closeConn: closeConn}
	switch {
	case cl >= 0:
		s.left = int64(cl)
		s.done = cl == 0
	case cl == -1:
		s.chunked = true
	default:
		// The body ends with the connection, which cannot be reused.
		s.untilEOF = true
		s.closeConn = true
	}
}

// releaser binds the connection to its HostClient for the stream's end. The
// closure is the one allocation of a streamed answer.
func releaser[C interface{ Conn() net.Conn }](hc *fasthttp.HostClient, cc C) func(bool) {
	return func(closeConn bool) { releaseOrClose(hc, cc, closeConn) }
}

func (s *bodyStream) Read(p []byte) (int, error) {
	if s.closed {
		return 0, io.ErrClosedPipe
	}
	if s.err != nil {
		return 0, s.err
	}
	if s.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	switch {
	case s.untilEOF:
		n, err := s.br.Read(p)
		if err == io.EOF {
			s.done = true
		} else if err != nil {
			s.err = err
		}
		return n, err
	case !s.chunked:
		if int64(len(p)) > s.left {
			p = p[:s.left]
		}
		n, err := s.br.Read(p)
		s.left -= int64(n)
		if s.left == 0 {
			s.done = true
			return n, nil
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			s.err = err
		}
		return n, err
	}
	// Chunked.
	if s.left == 0 {
		size, err := s.nextChunk()
		if err != nil {
			s.err = err
			return 0, err
		}
		if size == 0 {
			if err := s.resp.Header.ReadTrailer(s.br); err != nil {
				s.err = fmt.Errorf("%w: trailer: %v", errBadChunk, err)
				return 0, s.err
			}
			s.done = true
			return 0, io.EOF
		}
		s.left = size
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.br.Read(p)
	s.left -= int64(n)
	if s.left == 0 && err == nil {
		err = s.chunkEnd()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

// nextChunk reads a chunk-size line: hex digits, optional extensions, CRLF.
func (s *bodyStream) nextChunk() (int64, error) {
	line, err := s.readLine()
	if err != nil {
		return 0, err
	}
	var size int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			// A chunk extension (or whitespace before it) ends the size.
			if digits == 0 {
				return 0, errBadChunk
			}
			return size, nil
		default:
			return 0, errBadChunk
		}
		if digits == 15 {
			return 0, errBadChunk // over 2^60 bytes
		}
		size = size<<4 | int64(d)
		digits++
	}
	if digits == 0 {
		return 0, errBadChunk
	}
	return size, nil
}

// chunkEnd reads the CRLF after a chunk's data.
func (s *bodyStream) chunkEnd() error {
	c, err := s.br.ReadByte()
	if err == nil && c == '\r' {
		c, err = s.br.ReadByte()
	}
	if err != nil {
		return err
	}
	if c != '\n' {
		return errBadChunk
	}
	return nil
}

// readLine reads a chunk-size line without its line end. A line longer
// than the reader's buffer is refused.
func (s *bodyStream) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errBadChunk
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	n := copy(s.sizeBuf[:], line)
	return s.sizeBuf[:n], nil
}

// CloseWithError is called once the server has written the body, or failed
// to: the connection goes back to the pool only if the body was read whole.
func (s *bodyStream) CloseWithError(err error) error {
	if s.closed {
		return nil
	}
	s.closed = true
	reuse := err == nil && s.err == nil && s.done && !s.closeConn
	s.hc.ReleaseReader(s.br)
	if reuse {
		s.release(false)
	} else {
		// Unblock and drop the connection: the rest of the body is unread.
		s.release(true)
	}
	s.br, s.resp = nil, nil
	return nil
}
