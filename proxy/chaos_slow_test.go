package proxy_test

import (
	"fmt"
	"io"
	"net"
	"strings"
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
