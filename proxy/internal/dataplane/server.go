package dataplane

// The data plane's fasthttp server and the answers it gives to requests
// it cannot forward.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/httpx"
)

func (p *Plane) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      p.serve,
		ErrorHandler:                 p.serverError,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		StreamRequestBody:            true,
		LazyRequestTime:              true,
		DisablePreParseMultipartForm: true,
		MaxRequestBodySize:           p.cfg.BufferBodyBytes,
		// The header timeout is the watchdog's, from a request's first
		// byte (see requestBegins); a ReadTimeout here would restart
		// deadlines the phases are told apart by.
		IdleTimeout: p.cfg.IdleTimeout,
		// The listener refuses connections over max_connections with a
		// problem; fasthttp's own limit, which answers in plain text, stays
		// out of its way.
		Concurrency:           max(fasthttp.DefaultConcurrency, 2*p.maxConns),
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{p.log},
		ConnState:             connState,
		ExpectHandler:         p.expect,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			// A request without a Content-Type is forwarded without one.
			h.SetNoDefaultContentType(true)
			// The deadline set for this ends the header phase: the body
			// is read under body_idle_timeout (see SetReadDeadline).
			return fasthttp.RequestConfig{ReadTimeout: bodyTimeout}
		},
	}
}

// expect answers Expect: 100-continue. A body that its Content-Length
// already puts over max_body_bytes is refused with 413 at once, instead of
// being invited and then refused.
func (p *Plane) expect(ctx *fasthttp.RequestCtx) int {
	if int64(ctx.Request.Header.ContentLength()) <= p.cfg.MaxBodyBytes {
		return fasthttp.StatusContinue
	}
	p.m.rejected.WithLabelValues("too_large").Inc()
	writeProblem(ctx, fasthttp.StatusRequestEntityTooLarge, problemSlug(fasthttp.StatusRequestEntityTooLarge), "",
		"the body exceeds the limit of "+strconv.FormatInt(p.cfg.MaxBodyBytes, 10)+" bytes", nil)
	return fasthttp.StatusRequestEntityTooLarge
}

// fasthttpLogger sends fasthttp's own messages to the structured log.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// serverError answers requests that fasthttp could not parse.
func (p *Plane) serverError(ctx *fasthttp.RequestCtx, err error) {
	reason, status, detail := "malformed", fasthttp.StatusBadRequest, "the request could not be parsed"
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, errBareLF):
		reason, detail = "bare_lf", "a header line ends in a bare LF; HTTP/1.1 lines end in CRLF"
	case errors.Is(err, fasthttp.ErrDuplicateContentLength):
		reason, detail = "ambiguous_framing", "request has more than one Content-Length"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		reason, status, detail = "too_large", fasthttp.StatusRequestEntityTooLarge, "the request body is too large"
	case errors.As(err, &small):
		reason, status, detail = "headers_too_large", fasthttp.StatusRequestHeaderFieldsTooLarge, "the request headers are too large"
	case isTimeout(err):
		reason, status, detail = "timeout", fasthttp.StatusRequestTimeout, "the request was not received in time"
	}
	p.m.rejected.WithLabelValues(reason).Inc()
	writeProblem(ctx, status, problemSlug(status), "", detail, nil)
	ctx.SetConnectionClose()
}

// rejectBody answers a request whose body could not be read: 408 when the
// client stopped sending it for body_idle_timeout, else 400 with detail.
func (p *Plane) rejectBody(st *reqState, err error, detail string) {
	if !isTimeout(err) {
		p.reject(st, "bad_body", detail)
		return
	}
	st.reason = reasonRejected
	p.m.rejected.WithLabelValues("body_timeout").Inc()
	p.problem(st, fasthttp.StatusRequestTimeout, problemSlug(fasthttp.StatusRequestTimeout), "Request timeout",
		"the request body stopped arriving for "+p.cfg.BodyIdleTimeout.String())
	st.ctx.SetConnectionClose()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func problemSlug(status int) string {
	switch status {
	case fasthttp.StatusRequestEntityTooLarge:
		return "too-large"
	case fasthttp.StatusRequestTimeout:
		return "timeout"
	}
	return "bad-request"
}

// problem writes an RFC 9457 problem as the answer to st.
func (p *Plane) problem(st *reqState, status int, slug, title, detail string) {
	writeProblem(st.ctx, status, slug, title, detail, st.reqID)
}

func writeProblem(ctx *fasthttp.RequestCtx, status int, slug, title, detail string, reqID []byte) {
	pr := httpx.NewProblem(status, slug, title, detail)
	pr.Instance = string(ctx.URI().PathOriginal())
	pr.RequestID = string(reqID)
	body, err := json.Marshal(pr)
	if err != nil {
		body = []byte(`{"title":"error"}`)
	}
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(status)
	resp.Header.SetContentType(httpx.ContentTypeProblem)
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	if len(reqID) > 0 {
		resp.Header.SetBytesV("X-Request-Id", reqID)
	}
	resp.SetBody(body)
}
