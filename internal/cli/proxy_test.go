package cli

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProxyPortInUse: `strangler proxy` on a port in use fails with one
// line that names the address, and announces no components.
func TestProxyPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tt := range []struct{ name, flag string }{
		{"data plane", "--addr"},
		{"admin", "--admin-addr"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"proxy", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", tt.flag, taken.Addr().String()}
			var out, errOut bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Main(args, &out, &errOut) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("strangler proxy on a port in use did not exit within 60s")
			}
			// The error is the last line; the log's lines come before it.
			lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
			msg := lines[len(lines)-1]
			if code == 0 || !strings.HasPrefix(msg, "strangler: proxy") || !strings.Contains(msg, "listen on "+taken.Addr().String()) || !strings.Contains(msg, "address already in use") {
				t.Fatalf("exit %d, stderr %q; want a failure in one line naming %s in use", code, errOut.String(), taken.Addr())
			}
			if strings.Contains(out.String(), "http://") {
				t.Fatalf("announced components though the proxy did not start:\n%s", out.String())
			}
		})
	}
}
