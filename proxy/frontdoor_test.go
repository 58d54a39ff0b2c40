package proxy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// seen is what a recording backend answers: the request it received, with
// its trailers, as net/http parsed them.
type seen struct {
	Headers  map[string][]string `json:"headers"`
	Trailers map[string][]string `json:"trailers"`
	Body     string              `json:"body"`
}

// recordingBackend answers every request with the headers, trailers and
// body it received.
func recordingBackend(t *testing.T) *proxytest.Backend {
	return proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Headers: r.Header, Trailers: r.Trailer, Body: string(body)})
	}))
}

// rawConn is a client connection that speaks bytes, for protocol cases
// that a well-behaved client library cannot send.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Generous: the answers checked here come at once or after timeouts
	// of a few seconds at most.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// answer reads one answer and its body.
func (c *rawConn) answer(t *testing.T) (*http.Response, string, error) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// closed reports whether the proxy closed the connection: a read gets EOF
// or a reset rather than more bytes or the test's deadline.
func (c *rawConn) closed() bool {
	_, err := c.br.ReadByte()
	if err == nil {
		return false
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// send writes raw on a new connection and reads the answer.
func send(t *testing.T, addr, raw string) (*rawConn, *http.Response, string, error) {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, body, err := c.answer(t)
	return c, resp, body, err
}

func describe(resp *http.Response, body string, err error) string {
	if err != nil {
		return "no answer: " + err.Error()
	}
	return fmt.Sprintf("%d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// chunked frames body as chunks of at most n bytes, followed by the
// trailer section.
func chunked(body string, n int, trailers string) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n" + trailers + "\r\n")
	return b.String()
}

// adminExtracted is a table with a catch-all route to legacy and an admin
// module, extracted to the backend at url, with the one route given.
func adminExtracted(url, route string) string {
	return `
backends:
  svc: {urls: ["` + url + `"]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: admin
    candidate: svc
    mode: extracted
    routes: [` + route + `]
`
}

// TestChaosRequestTrailers sends chunked bodies whose trailers carry
// internal headers; none of them, nor a Trailer header, may reach the
// backend, whether the body is buffered or streamed.
func TestChaosRequestTrailers(t *testing.T) {
	backend := recordingBackend(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.InternalHeaders = []string{"X-User-Id"}
	}})
	small, large := "hello world", strings.Repeat("b", 200<<10)
	tests := []struct {
		name, announce, trailers, body string
	}{
		{"shadow marker, small body", "X-Strangler-Shadow", "X-Strangler-Shadow: forged\r\n", small},
		{"configured internal header, small body", "X-User-Id", "X-User-Id: admin\r\n", small},
		{"forwarded, small body", "Forwarded", "Forwarded: for=6.6.6.6\r\n", small},
		{"unannounced, small body", "", "X-User-Id: admin\r\nX-Strangler-Shadow: forged\r\n", small},
		{"shadow marker, streamed body", "X-Strangler-Shadow", "X-Strangler-Shadow: forged\r\n", large},
		{"configured internal header, streamed body", "X-User-Id", "X-User-Id: admin\r\n", large},
		{"unannounced, streamed body", "", "Forwarded: for=6.6.6.6\r\nX-User-Id: admin\r\n", large},
		{"a header's name, small body", "X-Request-Id", "X-Request-Id: forged\r\n", small},
		{"a header's name, streamed body", "", "X-Request-Id: forged\r\n", large},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Request-Id: trailer-test\r\n"
			if tt.announce != "" {
				head += "Trailer: " + tt.announce + "\r\n"
			}
			_, resp, body, err := send(t, p.Addr(), head+"\r\n"+chunked(tt.body, 32<<10, tt.trailers))
			tried := fmt.Sprintf("a chunked POST of %d bytes with trailers %q", len(tt.body), tt.trailers)
			var s seen
			if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
				chaostest.Report(t, false, tried, "200 from the backend", describe(resp, body, err))
				return
			}
			var leaked []string
			for _, k := range []string{"X-Strangler-Shadow", "X-User-Id", "Forwarded", "Trailer"} {
				if v := http.Header(s.Headers).Values(k); len(v) > 0 {
					leaked = append(leaked, "header "+k+": "+strings.Join(v, ","))
				}
			}
			for k, v := range s.Trailers {
				leaked = append(leaked, "trailer "+k+": "+strings.Join(v, ","))
			}
			if got := http.Header(s.Headers).Get("X-Request-Id"); got != "trailer-test" {
				leaked = append(leaked, "X-Request-Id changed to "+got)
			}
			ok := len(leaked) == 0 && s.Body == tt.body
			chaostest.Report(t, ok, tried, "the body whole, with no trailers and no Trailer header at the backend",
				fmt.Sprintf("body of %d bytes, %v", len(s.Body), leaked))
		})
	}
}

// TestChaosExpectOverLimit asks to send a body over max_body_bytes with
// Expect: 100-continue; the proxy must refuse it at once with 413 instead
// of inviting the upload.
func TestChaosExpectOverLimit(t *testing.T) {
	backend := recordingBackend(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) { c.MaxBodyBytes = 1 << 20 }})
	_, resp, body, err := send(t, p.Addr(), "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\n\r\n")
	ok := err == nil && resp.StatusCode == http.StatusRequestEntityTooLarge && resp.Header.Get("Content-Type") == "application/problem+json" && backend.Hits() == 0
	chaostest.Report(t, ok, "Expect: 100-continue with a Content-Length of 2 MiB over a 1 MiB limit",
		"413 problem as the first answer, nothing forwarded", fmt.Sprintf("%s, backend hits %d", describe(resp, body, err), backend.Hits()))

	// A body within the limit is still invited.
	c := dialRaw(t, p.Addr())
	fmt.Fprint(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("no 100 Continue within the limit: %q %v", line, err)
	}
}

// TestChaosBareLineFeeds sends requests whose lines end in a bare LF; the
// proxy must refuse them with 400 at once rather than wait for the header
// timeout.
func TestChaosBareLineFeeds(t *testing.T) {
	backend := recordingBackend(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		// Long enough that a 408 after it cannot pass for the 400.
		c.ReadHeaderTimeout = 5 * time.Second
	}})
	tests := []struct{ name, raw string }{
		{"every line", "GET /x HTTP/1.1\nHost: a\n\n"},
		{"header lines", "GET /x HTTP/1.1\r\nHost: a\nX-A: 1\n\n"},
		{"request line", "GET /x HTTP/1.1\nHost: a\r\n\r\n"},
		{"the blank line", "GET /x HTTP/1.1\r\nHost: a\r\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, body, err := send(t, p.Addr(), tt.raw)
			ok := err == nil && resp.StatusCode == http.StatusBadRequest && strings.Contains(body, "bare LF") && c.closed()
			chaostest.Report(t, ok, fmt.Sprintf("a request with bare LF line endings (%s): %q", tt.name, tt.raw),
				"400 problem at once and the connection closed", describe(resp, body, err))
		})
	}
	if backend.Hits() != 0 {
		t.Errorf("the backend got %d of the refused requests", backend.Hits())
	}
	// Sound requests pass: pipelined, with bodies full of bare LFs, and
	// with their CRLFs split across writes.
	c := dialRaw(t, p.Addr())
	body := "a\n\nb\n"
	fmt.Fprintf(c, "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%sGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", len(body), body)
	for _, piece := range []string{"GET /3 HTTP/1.1\r", "\nHost: a\r", "\n\r", "\n"} {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprint(c, piece)
	}
	for i := 1; i <= 3; i++ {
		resp, body, err := c.answer(t)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("sound request %d: %s", i, describe(resp, body, err))
		}
	}
}

// TestChaosHostTrailingDot sends the fully qualified form of a routed host
// (with its trailing dot), which names the same host and must take the
// same route rather than slip past it.
func TestChaosHostTrailingDot(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	admin := proxytest.EchoBackend(t, "admin")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: adminExtracted(admin.URL, "{id: admin, prefix: /, host: admin.example.com}")})
	for _, host := range []string{"admin.example.com", "admin.example.com.", "ADMIN.example.com.", "admin.example.com.:8080"} {
		_, e := proxytest.Get(t, p.URL+"/x", map[string]string{"Host": host})
		saw := "no echo"
		if e != nil {
			saw = "backend " + e.Backend
		}
		chaostest.Report(t, e != nil && e.Backend == "admin", "Host: "+host+" against a route for admin.example.com", "the admin route", saw)
	}
}

// TestChaosUnderscoreHeaders sends header names with underscores, which
// many backends read as dashes (X_Forwarded_For as X-Forwarded-For): they
// are dropped by default, and with underscores allowed, those that fold to
// an internal header still are.
func TestChaosUnderscoreHeaders(t *testing.T) {
	backend := recordingBackend(t)
	raw := "GET /h HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nX-Strangler_Shadow: forged\r\nX_User_Id: admin\r\nX-Forwarded_Host: evil\r\nFoo_Bar: plain\r\n\r\n"
	tests := []struct {
		name  string
		allow bool
		kept  []string
	}{
		{"by default", false, nil},
		{"allowed", true, []string{"foo_bar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
				c.InternalHeaders = []string{"X-User-Id"}
				c.UnderscoresInHeaders = tt.allow
			}})
			_, resp, body, err := send(t, p.Addr(), raw)
			var s seen
			if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
				chaostest.Report(t, false, "headers with underscores", "200 from the backend", describe(resp, body, err))
				return
			}
			var got []string
			for k := range s.Headers {
				if strings.Contains(k, "_") {
					got = append(got, strings.ToLower(k))
				}
			}
			ok := strings.Join(got, ",") == strings.Join(tt.kept, ",") && http.Header(s.Headers).Get("X-Forwarded-For") == "127.0.0.1"
			chaostest.Report(t, ok, fmt.Sprintf("headers X_Forwarded_For, X-Strangler_Shadow, X_User_Id, X-Forwarded_Host, Foo_Bar with underscores_in_headers=%v", tt.allow),
				fmt.Sprintf("underscored names at the backend: %v", tt.kept), fmt.Sprintf("%v, X-Forwarded-For %q", got, http.Header(s.Headers).Get("X-Forwarded-For")))
		})
	}
}

// TestBodyWithoutContentType checks that a body sent without a
// Content-Type reaches the backend without one: the proxy adds none.
func TestBodyWithoutContentType(t *testing.T) {
	backend := recordingBackend(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	large := strings.Repeat("c", 100<<10)
	tests := []struct{ name, raw, body string }{
		{"content-length", "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"small chunked", "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("hello", 2, ""), "hello"},
		{"streamed content-length", fmt.Sprintf("POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(large), large), large},
		{"streamed chunked", "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(large, 16<<10, ""), large},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, body, err := send(t, p.Addr(), tt.raw)
			var s seen
			if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
				t.Fatalf("got %s", describe(resp, body, err))
			}
			if ct, ok := s.Headers["Content-Type"]; ok || s.Body != tt.body {
				t.Errorf("backend got Content-Type %v (want none) and a body of %d bytes (want %d)", ct, len(s.Body), len(tt.body))
			}
		})
	}
}

// TestChaosStalledBody promises a body and stops sending it part way; the
// proxy must answer 408 and close the connection once body_idle_timeout
// passes without progress, while a body that trickles in steadily passes.
func TestChaosStalledBody(t *testing.T) {
	backend := recordingBackend(t)
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.BodyIdleTimeout = time.Second
	}})
	big := strings.Repeat("s", 100<<10)
	tests := []struct{ name, raw string }{
		{"content-length, stalled at once", "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"},
		{"content-length, stalled part way", "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"},
		{"streamed content-length, stalled part way", fmt.Sprintf("POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", 2*len(big), big)},
		{"chunked, stalled in a chunk", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"},
		{"streamed chunked, stalled between chunks", "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.TrimSuffix(chunked(big, 8<<10, ""), "0\r\n\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, body, err := send(t, p.Addr(), tt.raw)
			ok := err == nil && resp.StatusCode == http.StatusRequestTimeout && resp.Header.Get("Content-Type") == "application/problem+json" && c.closed()
			chaostest.Report(t, ok, "a body promised and not sent: "+tt.name, "408 problem and the connection closed after body_idle_timeout (1s)", describe(resp, body, err))
		})
	}
	t.Run("a steady trickle passes", func(t *testing.T) {
		// 30 parts 100 ms apart: three times the idle timeout in all,
		// with no gap near it.
		c := dialRaw(t, p.Addr())
		const parts = 30
		fmt.Fprintf(c, "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", parts)
		for range parts {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, "t"); err != nil {
				t.Fatal(err)
			}
		}
		resp, body, err := c.answer(t)
		var s seen
		if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil || s.Body != strings.Repeat("t", parts) {
			t.Fatalf("got %s", describe(resp, body, err))
		}
	})
}
