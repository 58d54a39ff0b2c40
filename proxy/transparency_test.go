package proxy_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// legacyOnly is a table with one catch-all route to legacy.
const legacyOnly = `
modules:
  - name: default
    routes: [{id: default, prefix: /}]
`

// TestServerSentEventsStream checks that events reach the client as the
// backend sends them, before the stream ends.
func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	backend := proxytest.HandlerBackend(t, "sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		f := w.(http.Flusher)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			f.Flush()
			if i == 2 {
				// Hold the stream open until the client has seen two
				// events: if the proxy buffered, it never would.
				select {
				case <-release:
				case <-time.After(30 * time.Second):
					return
				}
			}
		}
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	resp, err := http.Get(p.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var got []string
	for len(got) < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream broke after %v: %v", got, err)
		}
		if strings.HasPrefix(line, "data: ") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rest), "data: event 3") {
		t.Fatalf("third event missing: %q", rest)
	}
}

// TestChunkedResponse checks a chunked answer of unknown length streams
// through whole.
func TestChunkedResponse(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "chunked", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for i := range 200 {
			fmt.Fprintf(w, "line %04d %s\n", i, strings.Repeat("x", 500))
			if i%20 == 0 {
				f.Flush()
			}
		}
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	resp, err := http.Get(p.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	if n := strings.Count(string(body), "\n"); n != 200 {
		t.Fatalf("got %d lines, want 200", n)
	}
}

// TestWebSocketUpgrade relays a WebSocket conversation both ways.
func TestWebSocketUpgrade(t *testing.T) {
	echo := wsEcho("echo: ", http.Header{"X-Upgraded-By": {"backend"}}, nil)
	backend := proxytest.HandlerBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Strangler-Secret") != "" {
			http.Error(w, "internal header leaked", http.StatusBadRequest)
			return
		}
		echo(w, r)
	}))
	// Timeouts short enough that a relay which kept them would cut the
	// conversation below.
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	}})
	wsURL := "ws" + strings.TrimPrefix(p.URL, "http") + "/ws?room=1"
	c, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"X-Strangler-Secret": {"forged"}})
	if err != nil {
		t.Fatalf("dial through the proxy: %v (response %v)", err, resp)
	}
	defer c.Close()
	if resp.Header.Get("X-Upgraded-By") != "backend" {
		t.Errorf("backend's handshake headers lost: %v", resp.Header)
	}
	for i := range 5 {
		msg := fmt.Sprintf("hello %d %s", i, strings.Repeat("y", i*1000))
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %.40q", got)
		}
		if i == 2 {
			time.Sleep(700 * time.Millisecond)
		}
	}
}

// TestWebSocketRefused relays a backend's refusal of the upgrade as a
// normal answer.
func TestWebSocketRefused(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "nows", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusForbidden)
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("want the backend's 403, got %v %v", resp, err)
	}
}

// TestLargeUpload streams a 64 MiB body to the backend, which checks it
// whole, and the answer proves every byte arrived in order.
func TestLargeUpload(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "upload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	const size = 64 << 20
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			want := sha256.New()
			pr, pw := io.Pipe()
			go func() {
				buf := make([]byte, 1<<20)
				for i := 0; i < size/len(buf); i++ {
					for j := range buf {
						buf[j] = byte(i + j)
					}
					want.Write(buf)
					if _, err := pw.Write(buf); err != nil {
						pw.CloseWithError(err)
						return
					}
				}
				pw.Close()
			}()
			req, _ := http.NewRequest(http.MethodPost, p.URL+"/upload", pr)
			if !chunked {
				req.ContentLength = size
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			exp := fmt.Sprintf("%d %s", size, hex.EncodeToString(want.Sum(nil)))
			if resp.StatusCode != http.StatusOK || string(got) != exp {
				t.Fatalf("got %d %q, want %q", resp.StatusCode, got, exp)
			}
		})
	}
}

// TestUploadOverLimit refuses a body over max_body_bytes with 413.
func TestUploadOverLimit(t *testing.T) {
	backend := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) { c.MaxBodyBytes = 1 << 20 }})
	resp, err := http.Post(p.URL+"/x", "application/octet-stream", strings.NewReader(strings.Repeat("z", 2<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if backend.Hits() != 0 {
		t.Fatal("the backend got the request")
	}
}

// TestForwardingHeaders checks X-Forwarded-*, the request ID, trace
// context, the Host header, hop-by-hop and internal headers.
func TestForwardingHeaders(t *testing.T) {
	backend := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.InternalHeaders = []string{"X-Authenticated-User"}
	}})
	tests := []struct {
		name   string
		in     map[string]string
		check  func(t *testing.T, h http.Header, host string)
		status int
	}{
		{
			name: "client copies of internal headers are removed",
			in: map[string]string{
				"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
				"X-Forwarded-Prefix": "/evil", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6",
				"X-Strangler-Shadow": "copy", "X-Strangler-Anything": "1", "X-Authenticated-User": "admin",
				"Host": "shop.example.com",
			},
			check: func(t *testing.T, h http.Header, host string) {
				if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q, want the peer only", got)
				}
				if got := h.Get("X-Forwarded-Proto"); got != "http" {
					t.Errorf("X-Forwarded-Proto = %q", got)
				}
				if got := h.Get("X-Forwarded-Host"); got != "shop.example.com" {
					t.Errorf("X-Forwarded-Host = %q", got)
				}
				if host != "shop.example.com" {
					t.Errorf("Host = %q, want the client's", host)
				}
				for _, k := range []string{"X-Forwarded-Prefix", "Forwarded", "X-Real-Ip", "X-Strangler-Shadow", "X-Strangler-Anything", "X-Authenticated-User"} {
					if v := h.Get(k); v != "" {
						t.Errorf("%s = %q reached the backend", k, v)
					}
				}
			},
		},
		{
			name: "hop-by-hop headers are removed",
			in: map[string]string{
				"Connection": "keep-alive, X-Hop, X-Other-Hop", "X-Hop": "1", "X-Other-Hop": "2", "Keep-Alive": "timeout=5",
				"Proxy-Authorization": "Basic Zm9vOmJhcg==", "Proxy-Connection": "keep-alive", "TE": "trailers", "Upgrade": "h2c",
				"X-End-To-End": "kept",
			},
			check: func(t *testing.T, h http.Header, _ string) {
				for _, k := range []string{"X-Hop", "X-Other-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade"} {
					if v := h.Get(k); v != "" {
						t.Errorf("%s = %q reached the backend", k, v)
					}
				}
				if h.Get("X-End-To-End") != "kept" {
					t.Error("an end-to-end header was lost")
				}
			},
		},
		{
			name: "a valid request ID and trace context are kept",
			in:   map[string]string{"X-Request-ID": "req-42", "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			check: func(t *testing.T, h http.Header, _ string) {
				if h.Get("X-Request-Id") != "req-42" {
					t.Errorf("request ID %q", h.Get("X-Request-Id"))
				}
				tp := h.Get("Traceparent")
				if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || !strings.HasSuffix(tp, "-01") || strings.Contains(tp, "00f067aa0ba902b7") || len(tp) != 55 {
					t.Errorf("traceparent %q: want the same trace, a new parent ID, the same flags", tp)
				}
			},
		},
		{
			name: "a missing or forged request ID and trace context are replaced",
			in:   map[string]string{"X-Request-ID": "bad id\twith tab", "Traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
			check: func(t *testing.T, h http.Header, _ string) {
				if id := h.Get("X-Request-Id"); len(id) != 32 {
					t.Errorf("request ID %q, want a new 32-hex ID", id)
				}
				if tp := h.Get("Traceparent"); len(tp) != 55 || strings.Contains(tp, "00000000000000000000000000000000") {
					t.Errorf("traceparent %q, want a new trace", tp)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, e := proxytest.Get(t, p.URL+"/h", tt.in)
			if resp.StatusCode != http.StatusOK || e == nil {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if resp.Header.Get("X-Request-Id") != e.Headers["X-Request-Id"][0] {
				t.Errorf("response request ID %q differs from the forwarded %q", resp.Header.Get("X-Request-Id"), e.Headers["X-Request-Id"])
			}
			tt.check(t, http.Header(e.Headers), e.Host)
		})
	}
}

// TestTrustedProxy extends X-Forwarded-For from a trusted peer.
func TestTrustedProxy(t *testing.T) {
	backend := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.TrustedProxies = []string{"127.0.0.0/8"}
	}})
	_, e := proxytest.Get(t, p.URL+"/h", map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com"})
	h := http.Header(e.Headers)
	if got := h.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Host") != "shop.example.com" {
		t.Errorf("trusted X-Forwarded-Proto/Host lost: %v", h)
	}
}

// TestResponseHopByHop checks hop-by-hop headers in answers are removed.
func TestResponseHopByHop(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=1")
		w.Header().Set("X-Public", "ok")
		fmt.Fprint(w, "hi")
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Private") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Connection") != "" {
		t.Errorf("hop-by-hop headers reached the client: %v", resp.Header)
	}
	if resp.Header.Get("X-Public") != "ok" {
		t.Error("end-to-end header lost")
	}
	if s := resp.Header.Get("Server"); s != "" {
		t.Errorf("the proxy added Server: %s", s)
	}
	if resp.Close {
		t.Error("the backend's Connection header closed the client's connection")
	}
}

// TestPathNormalized checks that the backend gets the path the proxy
// routed on.
func TestPathNormalized(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: adminExtracted(svc.URL, "{id: admin, prefix: /admin}")})
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /public/..//%61dmin/./x?q=%2F HTTP/1.1\r\nHost: a\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"backend":"svc"`) || !strings.Contains(string(body), `"uri":"/admin/x?q=%2F"`) {
		t.Fatalf("got %s", body)
	}
}

// TestNoRoute answers 404 with a problem when no route matches.
func TestNoRoute(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: `
modules:
  - name: api
    routes: [{id: api, prefix: /api}]
`})
	resp, _ := proxytest.Get(t, p.URL+"/elsewhere", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), `"request_id"`) {
		t.Fatalf("got %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestExpectContinue answers 100-continue itself and forwards the body.
func TestExpectContinue(t *testing.T) {
	backend := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}
	_, _ = br.ReadString('\n') // the blank line
	fmt.Fprint(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"body":"hello"`) || strings.Contains(string(body), "Expect") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestResponseTrailers checks what happens to HTTP/1.1 trailers: they are
// passed on with a chunked answer.
func TestResponseTrailers(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "trailers", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		fmt.Fprint(w, "part one, ")
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "part two")
		w.Header().Set("X-Checksum", "abc123")
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	resp, err := http.Get(p.URL + "/t")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "part one, part two" {
		t.Fatalf("body %q", body)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Fatalf("trailer %q lost (trailers %v)", got, resp.Trailer)
	}
}

// TestAnswersWithoutBody relays HEAD, 204 and 304 answers, and a backend
// that closes every connection, without breaking the client's connection.
func TestAnswersWithoutBody(t *testing.T) {
	backend := proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/close":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		default:
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "hello world")
		}
	}))
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
		length       string
	}{
		{"HEAD", "/x", 200, "", "11"},
		{"GET", "/204", 204, "", ""},
		{"GET", "/304", 304, "", ""},
		{"GET", "/close", 200, "bye", "3"},
		{"GET", "/close", 200, "bye", "3"},
		{"GET", "/x", 200, "hello world", "11"},
	} {
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: a\r\n\r\n", tc.method, tc.path)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || string(body) != tc.body || resp.Close {
			t.Fatalf("%s %s: %d %q close=%v", tc.method, tc.path, resp.StatusCode, body, resp.Close)
		}
		if tc.length != "" && resp.Header.Get("Content-Length") != tc.length {
			t.Errorf("%s %s: Content-Length %q", tc.method, tc.path, resp.Header.Get("Content-Length"))
		}
	}
}

// TestHeadersTooLarge refuses headers over the read buffer with 431.
func TestHeadersTooLarge(t *testing.T) {
	backend := proxytest.EchoBackend(t, "legacy")
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly})
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 20<<10))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || backend.Hits() != 0 {
		t.Fatalf("status %d, backend hits %d", resp.StatusCode, backend.Hits())
	}
}
