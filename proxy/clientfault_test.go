package proxy_test

import (
	"bufio"
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

// breakerRepeats is more than the default breaker's five consecutive
// failures, so that a fault counted against a backend would open it.
const breakerRepeats = 8

// rawRequest sends head and body on a new connection to addr and returns
// the connection, for tests that break the protocol on purpose.
func rawRequest(t *testing.T, addr, head string, body []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	return c
}

// accessLines returns how many access log lines there are.
func accessLines(p *proxytest.Proxy) int { return len(p.Access.Lines()) }

// TestChaosClientFaultsDoNotOpenBreaker: uploads whose client breaks off
// the body, or sends more than max_body_bytes, are the client's fault;
// however many there are, the legacy breaker stays closed and the next
// client is served.
func TestChaosClientFaultsDoNotOpenBreaker(t *testing.T) {
	half := []byte(strings.Repeat("h", 100000))
	cases := []struct {
		name, tried, head string
		body              []byte
		// answer is the status the client gets when it stays to read;
		// zero when it hangs up.
		answer int
	}{
		{"length_cut_short", "an upload with Content-Length: 200000 whose client closes after half the body",
			"POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 200000\r\n\r\n", half, 0},
		{"chunked_cut_short", "a chunked upload whose client closes in the middle of a chunk",
			"POST /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n", append([]byte("30d40\r\n"), half...), 0},
		{"chunked_over_limit", "a chunked upload of 2 MiB to a proxy whose max_body_bytes is 1 MiB",
			"POST /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n",
			[]byte(fmt.Sprintf("200000\r\n%s\r\n0\r\n\r\n", strings.Repeat("c", 2<<20))), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			legacy := proxytest.EchoBackend(t, "legacy")
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) { c.MaxBodyBytes = 1 << 20 }})
			addr := p.Addr()
			for i := range breakerRepeats {
				before := accessLines(p)
				c := rawRequest(t, addr, tc.head, tc.body)
				if tc.answer != 0 {
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil || resp.StatusCode != tc.answer {
						chaostest.Report(t, false, tc.tried, fmt.Sprintf("%d", tc.answer), fmt.Sprintf("attempt %d: %v %v", i, resp, err))
					}
				}
				c.Close()
				proxytest.Eventually(t, 20*time.Second, func() bool { return accessLines(p) > before }, "attempt %d was never logged", i)
			}
			resp, _ := proxytest.Get(t, p.URL+"/after", nil)
			state := metric(t, p, "strangler_proxy_breaker_state", `backend="legacy"`)
			ok := resp.StatusCode == http.StatusOK && state == 0
			chaostest.Report(t, ok, fmt.Sprintf("%d times: %s, then a plain GET", breakerRepeats, tc.tried),
				"the GET gets 200 and legacy's breaker stays closed (0)",
				fmt.Sprintf("GET %d, breaker state %v", resp.StatusCode, state))
		})
	}
}

// earlyAnswerBackend is a raw HTTP backend that, for a request whose body
// is longer than limit, reads limit bytes of it, answers 413 and closes,
// as a monolith with an upload limit does; other requests get 200.
func earlyAnswerBackend(t *testing.T, limit int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.ContentLength > limit || req.ContentLength < 0 {
						_, _ = io.CopyN(io.Discard, req.Body, limit)
						_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\nover the 1 MiB cap")
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestBackendEarlyAnswerRelayed: a monolith that reads 1 MiB of a 20 MB
// upload, answers 413 and closes has answered; the client gets that 413,
// not a 502, and legacy's breaker does not count it.
func TestBackendEarlyAnswerRelayed(t *testing.T) {
	legacy := earlyAnswerBackend(t, 1<<20)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy, Routes: legacyOnly})
	const size = 20 << 20
	body := []byte(strings.Repeat("u", size))
	for i := range breakerRepeats {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		go func() {
			// A well-behaved client: it sends its whole body, and reads the
			// answer meanwhile.
			_, _ = fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n", size)
			_, _ = c.Write(body)
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("upload %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || string(got) != "over the 1 MiB cap" {
			t.Fatalf("upload %d: got %d %q, want the backend's 413", i, resp.StatusCode, got)
		}
	}
	resp, _ := proxytest.Get(t, p.URL+"/after", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after the uploads: %d, want 200", resp.StatusCode)
	}
	if st := metric(t, p, "strangler_proxy_breaker_state", `backend="legacy"`); st != 0 {
		t.Fatalf("legacy's breaker state %v, want 0 (closed)", st)
	}
}
