package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// smuggled is the path that a request hidden in another's body asks for: a
// backend that ever sees it has been handed a request the proxy did not
// route.
const smuggled = "/smuggled"

// TestChaosFraming sends requests whose framing two HTTP parsers could read
// differently, each followed by a hidden request, over a raw socket. The
// proxy must refuse each one with a 400 problem and close the connection, so
// that neither the framed request nor the hidden one reaches the backend.
func TestChaosFraming(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	backend := proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	hidden := "GET " + smuggled + " HTTP/1.1\r\nHost: a\r\n\r\n"
	// versionNotSupported is the one case that gets another status: a
	// request line of a major version the proxy does not speak is a 505.
	const versionNotSupported = "HTTP/2 request line over HTTP/1"
	tests := []struct {
		name, raw string
	}{
		{"CL.TE", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden},
		{"TE.CL", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nabcde\r\n0\r\n\r\n" + hidden},
		{"two different Content-Lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n" + hidden},
		{"two equal Content-Lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd" + hidden},
		{"Content-Length list", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 40\r\n\r\n" + hidden},
		{"Content-Length with a sign", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n" + hidden},
		{"negative Content-Length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -40\r\n\r\n" + hidden},
		{"hex Content-Length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x0\r\n\r\n" + hidden},
		{"space before the colon", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + hidden},
		{"unknown transfer coding", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + hidden},
		{"gzip before chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + hidden},
		{"chunked not last", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden},
		{"two transfer codings", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n" + hidden},
		{"bad chunk size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + hidden},
		{"chunk size overflow", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n" + hidden},
		{"chunk longer than declared", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab" + hidden + "\r\n0\r\n\r\n"},
		{"obsolete line folding", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX-Fold: a\r\n Transfer-Encoding: chunked\r\n\r\n" + hidden},
		{"header line without a colon", "GET /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding chunked\r\n\r\n" + hidden},
		{"NUL in a header value", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n" + hidden},
		{"bare CR in a header value", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\rContent-Length: 40\r\n\r\n" + hidden},
		{"space in the request target", "GET /x " + smuggled + " HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"bad path escape", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n" + hidden},
		{versionNotSupported, "GET /x HTTP/2.0\r\nHost: a\r\n\r\n" + hidden},
		{"malformed HTTP version", "GET /x HTTP/1.1x\r\nHost: a\r\n\r\n" + hidden},
		{"HTTP/0.9 request line", "GET /x\r\n\r\n" + hidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := http.StatusBadRequest
			if tt.name == versionNotSupported {
				want = http.StatusHTTPVersionNotSupported
			}
			status, closed, err := sendRaw(p.Addr(), tt.raw)
			saw := fmt.Sprintf("status %d, connection closed %v", status, closed)
			if err != nil {
				saw = err.Error()
			}
			chaostest.Report(t, err == nil && status == want && closed,
				fmt.Sprintf("a request framed two ways (%q)", firstLines(tt.raw)), fmt.Sprintf("%d and the connection closed", want), saw)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	chaostest.Report(t, len(paths) == 0, fmt.Sprintf("%d ambiguous requests", len(tests)), "the backend receives none of them", fmt.Sprintf("the backend received %v", paths))
}

// sendRaw writes raw on a new connection and reads one answer, and then
// whether the proxy closed the connection after it.
func sendRaw(addr, raw string) (status int, closed bool, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, false, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, fmt.Errorf("no answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, rerr := br.ReadByte()
	return resp.StatusCode, rerr == io.EOF || resp.Close, nil
}

// firstLines shortens a raw request for a report.
func firstLines(raw string) string {
	if i := strings.Index(raw, "\r\n\r\n"); i > 0 {
		return raw[:i]
	}
	return raw
}
