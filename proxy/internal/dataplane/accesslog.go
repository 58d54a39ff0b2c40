package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/internal/private"
)

// accessLog writes one JSON line per request without making requests wait
// for it. A request formats its line into its own scratch buffer and
// appends it to the current batch under a short lock. A full batch goes to
// a writer goroutine through a channel, and the writer also takes the
// current batch every 100 ms; requests never wake the writer for each line,
// which on a busy proxy would cost a goroutine switch per request, and
// batches are recycled instead of grown. When the writer falls behind by
// buffer_bytes, lines are dropped and counted.
type accessLog struct {
	mu  sync.Mutex
	cur []byte

	full   chan []byte // batches waiting for the writer
	free   chan []byte // written batches, for reuse
	out    io.Writer
	file   *os.File
	drops  prometheus.Counter
	redact queryRedactor
	once   sync.Once
}

// batchSize is the size of one batch of lines.
const batchSize = 256 << 10

func newAccessLog(cfg AccessLogConfig, w io.Writer, drops prometheus.Counter) (*accessLog, error) {
	pending := max(cfg.BufferBytes/batchSize, 1)
	a := &accessLog{cur: make([]byte, 0, batchSize), full: make(chan []byte, pending), free: make(chan []byte, 4), drops: drops, redact: newQueryRedactor(cfg.RedactQuery)}
	switch {
	case w != nil:
		a.out = w
	case cfg.Path != "":
		f, err := os.OpenFile(cfg.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, private.File)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		a.out, a.file = f, f
	default:
		a.out = os.Stderr
	}
	return a, nil
}

// append adds a formatted line to the current batch.
func (a *accessLog) append(line []byte) {
	a.mu.Lock()
	if len(a.cur)+len(line) > cap(a.cur) && !a.rotateLocked() {
		a.mu.Unlock()
		a.drops.Inc()
		return
	}
	a.cur = append(a.cur, line...)
	a.mu.Unlock()
}

// rotateLocked hands the current batch to the writer and starts another;
// it fails when the writer is too far behind.
func (a *accessLog) rotateLocked() bool {
	if len(a.cur) > 0 {
		select {
		case a.full <- a.cur:
		default:
			return false
		}
	}
	select {
	case b := <-a.free:
		a.cur = b[:0]
	default:
		a.cur = make([]byte, 0, batchSize)
	}
	return true
}

// run writes batches until ctx ends, then writes what is left.
func (a *accessLog) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case b := <-a.full:
			a.write(b)
		case <-t.C:
			a.mu.Lock()
			if len(a.cur) > 0 {
				_ = a.rotateLocked()
			}
			a.mu.Unlock()
		case <-ctx.Done():
			for {
				select {
				case b := <-a.full:
					a.write(b)
					continue
				default:
				}
				break
			}
			a.mu.Lock()
			last := a.cur
			a.cur = nil
			a.mu.Unlock()
			if len(last) > 0 {
				_, _ = a.out.Write(last)
			}
			return
		}
	}
}

func (a *accessLog) write(b []byte) {
	_, _ = a.out.Write(b)
	select {
	case a.free <- b[:0]:
	default:
	}
}

func (a *accessLog) close() {
	a.once.Do(func() {
		if a.file != nil {
			_ = a.file.Close()
		}
	})
}

// log formats the line for one request.
func (a *accessLog) log(st *reqState, status int, now time.Time) {
	b := st.line[:0]
	b = append(b, `{"time":"`...)
	b = appendTime(b, now)
	b = append(b, `","level":"INFO","msg":"access","component":"proxy","request_id":`...)
	b = appendJSONString(b, st.reqID)
	if len(st.trace) >= 35 {
		b = append(b, `,"trace_id":"`...)
		b = append(b, st.trace[3:35]...)
		b = append(b, '"')
	}
	b = append(b, `,"method":`...)
	b = appendJSONString(b, st.ctx.Request.Header.Method())
	b = append(b, `,"path":`...)
	if len(st.path) > 0 {
		b = appendJSONString(b, st.path)
	} else {
		b = appendJSONString(b, st.ctx.URI().PathOriginal())
	}
	b = append(b, `,"query":`...)
	st.query = a.redact.append(st.query[:0], st.ctx.URI().QueryString())
	b = appendJSONString(b, st.query)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, st.host)
	b = append(b, `,"route":`...)
	if st.rt != nil {
		b = appendJSONString(b, st.rt.ID)
		b = append(b, `,"module":`...)
		b = appendJSONString(b, st.rt.Module)
	} else {
		b = append(b, `"","module":""`...)
	}
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, st.backend)
	b = append(b, `,"decision":`...)
	b = appendJSONString(b, st.reason)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, now.Sub(st.start))
	b = append(b, `,"upstream_ms":`...)
	b = appendMillis(b, st.upstream)
	b = append(b, `,"client":"`...)
	b = st.client.AppendTo(b)
	b = append(b, "\"}\n"...)
	st.line = b
	a.append(b)
}

// MaxRedactName is the longest query parameter name that can be redacted.
const MaxRedactName = 64

// queryRedactor replaces the values of named query parameters, so that
// credentials in URLs stay out of the access log.
type queryRedactor struct {
	names [][]byte
}

func newQueryRedactor(names []string) queryRedactor {
	r := queryRedactor{names: make([][]byte, len(names))}
	for i, n := range names {
		r.names[i] = []byte(n)
	}
	return r
}

// append appends the query q to b with the values of the redacted
// parameters replaced by REDACTED. Parameters end at '&' or ';', since
// some servers take either, so that "a=1;token=x" cannot slip a token by.
func (r queryRedactor) append(b, q []byte) []byte {
	for len(q) > 0 {
		end := bytes.IndexAny(q, "&;")
		pair := q
		if end >= 0 {
			pair = q[:end]
		}
		if eq := bytes.IndexByte(pair, '='); eq >= 0 && r.redacts(pair[:eq]) {
			b = append(b, pair[:eq+1]...)
			b = append(b, "REDACTED"...)
		} else {
			b = append(b, pair...)
		}
		if end < 0 {
			break
		}
		b = append(b, q[end])
		q = q[end+1:]
	}
	return b
}

// redacts reports whether a raw parameter name is one to redact. It
// compares without regard to case, after percent-decoding (rare, so the
// allocation is too), and without a trailing "[...]" (PHP's and Rails'
// arrays): %74oken, TOKEN and token[] are all token.
func (r queryRedactor) redacts(name []byte) bool {
	if len(name) > 3*MaxRedactName {
		return false
	}
	if bytes.ContainsAny(name, "%+") {
		if s, err := url.QueryUnescape(string(name)); err == nil {
			name = []byte(s)
		}
	}
	if i := bytes.IndexByte(name, '['); i > 0 && name[len(name)-1] == ']' {
		name = name[:i]
	}
	for _, n := range r.names {
		if bytes.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// appendMillis appends d in milliseconds with three decimals.
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// timePrefix caches the formatted date and time up to the second, which
// every line of that second shares.
type timePrefix struct {
	sec    int64
	prefix []byte // "2006-01-02T15:04:05."
}

var lastPrefix atomic.Pointer[timePrefix]

// appendTime appends t in UTC as RFC 3339 with microseconds.
func appendTime(b []byte, t time.Time) []byte {
	ns := t.UnixNano()
	sec := ns / 1e9
	tp := lastPrefix.Load()
	if tp == nil || tp.sec != sec {
		tp = &timePrefix{sec: sec, prefix: time.Unix(sec, 0).UTC().AppendFormat(nil, "2006-01-02T15:04:05.")}
		lastPrefix.Store(tp)
	}
	b = append(b, tp.prefix...)
	us := (ns % 1e9) / 1e3
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	b = append(b, d[:]...)
	return append(b, 'Z')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// so that a hostile path cannot break the line.
func appendJSONString[T ~[]byte | ~string](b []byte, s T) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
