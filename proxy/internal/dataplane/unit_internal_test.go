package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestScanHeaders(t *testing.T) {
	raw := "Host: a\r\nConnection: keep-alive, X-Hop\r\nCONTENT-LENGTH: 3\r\nTransfer-Encoding: chunked\r\n" +
		"X-Strangler-Route: forged\r\nx-forwarded-prefix: /p\r\nX-Forwarded-For: 1.2.3.4\r\nX-Auth-User: bob\r\n" +
		"Traceparent: 00-x\r\nTE: trailers\r\nProxy-Authorization: x\r\n\r\n"
	var s headerScan
	scanHeaders([]byte(raw), &s, newInternalHeaders([]string{"X-Auth-User"}, false))
	for name, flag := range map[string]uint32{"connection": hConnection, "transfer-encoding": hTransferEncoding, "xff": hXFF,
		"traceparent": hTraceparent, "te": hTE, "proxy-auth": hProxyAuth} {
		if s.flags&flag == 0 {
			t.Errorf("%s not found", name)
		}
	}
	if s.contentLengths != 1 {
		t.Errorf("content lengths %d", s.contentLengths)
	}
	var del []string
	for i := 0; i < s.ndel; i++ {
		del = append(del, string(s.del[i]))
	}
	if strings.Join(del, ",") != "X-Strangler-Route,x-forwarded-prefix,X-Auth-User" {
		t.Errorf("to delete: %v", del)
	}
}

func TestTraceparent(t *testing.T) {
	valid := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{valid, true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
	} {
		if got := validTraceparent([]byte(tc.in)); got != tc.ok {
			t.Errorf("%q: %v", tc.in, got)
		}
	}
	next := string(nextTraceparent(nil, []byte(valid)))
	if !strings.HasPrefix(next, valid[:36]) || !strings.HasSuffix(next, "-01") || next == valid || !validTraceparent([]byte(next)) {
		t.Errorf("next %q", next)
	}
	fresh := nextTraceparent(nil, nil)
	if !validTraceparent(fresh) || !strings.HasSuffix(string(fresh), "-00") {
		t.Errorf("fresh %q", fresh)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := parseTrusted([]string{"10.0.0.0/8", "192.168.1.1"})
	for _, tc := range []struct {
		xff, peer, want string
	}{
		{"203.0.113.5", "10.1.1.1", "203.0.113.5"},
		{"198.51.100.1, 203.0.113.5, 10.2.2.2", "10.1.1.1", "203.0.113.5"},
		{"203.0.113.5", "203.0.113.9", "203.0.113.9"}, // untrusted peer: its XFF is ignored
		{"garbage", "10.1.1.1", "10.1.1.1"},
		{"10.3.3.3", "192.168.1.1", "10.3.3.3"},
	} {
		p := netip.MustParseAddr(tc.peer)
		if got := clientAddr([]byte(tc.xff), p, trusted); got.String() != tc.want {
			t.Errorf("xff %q from %s: %s, want %s", tc.xff, tc.peer, got, tc.want)
		}
	}
}

func TestRetryBudgetUnit(t *testing.T) {
	b := newRetryBudget(0.5, 0)
	if b.withdraw() {
		t.Fatal("an empty budget allowed a retry")
	}
	for range 4 {
		b.deposit()
	}
	// 4 requests at 0.5 allow 2 retries.
	allowed := 0
	for range 5 {
		if b.withdraw() {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("4 requests at ratio 0.5 allowed %d retries, want 2", allowed)
	}
	floor := newRetryBudget(0.1, 3)
	n := 0
	for floor.withdraw() {
		n++
		if n > 10 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("the floor allowed %d retries in a second, want 3", n)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, in := range []string{"plain", `q"uote\back`, "tab\tnew\nline\x01", "héllo ✓", "bad\xffutf8"} {
		b := appendJSONString(nil, in)
		var out string
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%q rendered as invalid JSON %s: %v", in, b, err)
		}
		if strings.ToValidUTF8(in, "\ufffd") != out {
			t.Errorf("%q came back as %q", in, out)
		}
	}
}

// blockingWriter holds writes until released, like a slow disk.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestAccessLogDropsWhenBehind(t *testing.T) {
	drops := prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	w := &blockingWriter{release: make(chan struct{})}
	a, err := newAccessLog(AccessLogConfig{BufferBytes: 2 * batchSize}, w, drops)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.run(ctx); close(done) }()
	line := []byte(strings.Repeat("x", 1023) + "\n")
	const n = 8 * batchSize / 1024
	for range n {
		a.append(line)
	}
	if counterValue(drops) == 0 {
		t.Fatal("a writer that is behind did not make lines drop")
	}
	close(w.release)
	cancel()
	<-done
	written := strings.Count(w.buf.String(), "\n")
	if written+int(counterValue(drops)) != n {
		t.Fatalf("%d written + %v dropped != %d appended", written, counterValue(drops), n)
	}
}
