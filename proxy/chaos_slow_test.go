package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestChaosSlowHeaders holds connections open the way a slowloris client
// does: request headers that stop half-way, headers dribbled a byte at a
// time so that no read ever waits long, and a keep-alive connection left
// idle. The proxy must close each within its timeouts, however the bytes
// trickle in, and the backend must see none of the requests.
func TestChaosSlowHeaders(t *testing.T) {
	backend := proxytest.EchoBackend(t, "legacy")
	const headerTimeout, idleTimeout = 500 * time.Millisecond, time.Second
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.ReadHeaderTimeout = headerTimeout
		c.IdleTimeout = idleTimeout
	}})
	tests := []struct {
		name  string
		write func(conn net.Conn)
	}{
		{"headers that stop half-way", func(conn net.Conn) { fmt.Fprint(conn, "GET /x HTTP/1.1\r\nHost: a\r\n") }},
		{"headers dribbled a byte every 100ms", func(conn net.Conn) {
			for _, b := range []byte("GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("s", 60) + "\r\n\r\n") {
				if _, err := conn.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}},
		{"a connection that never sends a byte", func(net.Conn) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			go tt.write(conn)
			// Well past both timeouts, so that a busy machine does not
			// fail the test, and well short of holding it forever.
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.ReadAll(conn)
			held := time.Since(start).Round(10 * time.Millisecond)
			saw := fmt.Sprintf("the proxy closed the connection after %s", held)
			if err != nil {
				saw = fmt.Sprintf("the connection was still open after %s: %v", held, err)
			}
			chaostest.Report(t, err == nil, tt.name, fmt.Sprintf("closed within read_header_timeout %s or idle_timeout %s", headerTimeout, idleTimeout), saw)
		})
	}
	chaostest.Report(t, backend.Hits() == 0, "slow clients", "the backend receives none of their requests", fmt.Sprintf("%d requests reached it", backend.Hits()))
}

// TestChaosSlowReader sends a large answer to clients that take it at
// different paces. A client that reads nothing after the headers must have
// its connection closed within client_write_timeout, counted, with the
// backend exchange behind it ended; a client that reads slowly but
// steadily must get its whole answer, however long that takes.
func TestChaosSlowReader(t *testing.T) {
	// The slow reader's answer is larger than the kernel buffers its
	// bytes on the way (the proxy's send buffer grows to 4 MiB), so that
	// the proxy's writes wait on it.
	const size, smallSize = 64 << 20, 12 << 20
	var streaming atomic.Int64
	backend := proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streaming.Add(1)
		defer streaming.Add(-1)
		n := size
		if r.URL.Path == "/small" {
			n = smallSize
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < n; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	// The kernel wakes a blocked write only when half of what the socket
	// holds (up to 4 MiB) has gone, so progress comes in steps of up to
	// 2 MiB: at 640 KiB/s, some 3 s. The timeout is above that.
	const writeTimeout = 5 * time.Second
	p := proxytest.Start(t, proxytest.Config{Legacy: backend.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
		c.ClientWriteTimeout = writeTimeout
	}})

	t.Run("a client that reads nothing after the headers", func(t *testing.T) {
		// A small receive buffer, so that the proxy's writes block soon.
		conn := getWithReadBuffer(t, p.Addr(), "/big", 4<<10)
		start := time.Now()
		head := make([]byte, 512)
		if _, err := io.ReadAtLeast(conn, head, 12); err != nil {
			t.Fatal(err)
		}
		// Read nothing more: poll, from the side, for the proxy to give
		// up on the connection and end the backend exchange.
		closed := func() bool {
			return streaming.Load() == 0 && strings.Contains(scrape(t, p), `strangler_proxy_rejected_total{reason="client_write_timeout"} 1`)
		}
		deadline := time.Now().Add(writeTimeout + 20*time.Second)
		for !closed() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		held := time.Since(start).Round(10 * time.Millisecond)
		ok := closed()
		saw := fmt.Sprintf("after %s: the backend was released and the timeout counted", held)
		if !ok {
			saw = fmt.Sprintf("after %s: %d backend exchanges still streaming; metrics: %s", held, streaming.Load(), grepLines(scrape(t, p), "rejected_total"))
		}
		// Then the rest of what the kernel buffered, and the end.
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.Copy(io.Discard, conn)
		// The proxy resets the connection; a FIN after the buffered bytes
		// would do as well. A read that times out means it is still open.
		ended := err == nil || errors.Is(err, syscall.ECONNRESET)
		ok = ok && ended && got < size
		if !ended || got >= size {
			saw += fmt.Sprintf("; reading on: %d bytes, %v", got, err)
		}
		chaostest.Report(t, ok, "a client that stops reading a 64 MiB answer after its headers",
			fmt.Sprintf("connection closed within client_write_timeout %s (+ slack), backend exchange ended, counted", writeTimeout), saw)
	})

	t.Run("a client that reads slowly but steadily", func(t *testing.T) {
		conn := getWithReadBuffer(t, p.Addr(), "/small", 64<<10)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// 64 KiB every 100 ms: 12 MiB takes over 19 s, almost four times
		// the timeout.
		var got int64
		buf := make([]byte, 64<<10)
		start := time.Now()
		for {
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, err := io.ReadFull(resp.Body, buf)
			got += int64(n)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Logf("read: %v", err)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		ok := got == smallSize && resp.StatusCode == http.StatusOK
		chaostest.Report(t, ok, "a client that reads a 12 MiB answer at 64 KiB every 100 ms",
			"the whole answer, not cut by client_write_timeout "+writeTimeout.String(),
			fmt.Sprintf("status %d, %d of %d bytes in %s", resp.StatusCode, got, smallSize, time.Since(start).Round(10*time.Millisecond)))
	})
}

// getWithReadBuffer sends GET path on a new connection to addr whose
// receive buffer is size bytes, and closes it when the test ends.
func getWithReadBuffer(t *testing.T, addr, path string, size int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(size)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
	return conn
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
