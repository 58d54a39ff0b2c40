//go:build linux

package dataplane

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// outcome is what a read or write returned, in the terms callers test.
type outcome struct {
	n        int
	data     string
	eof      bool
	timeout  bool
	closed   bool
	reset    bool // EPIPE or ECONNRESET
	op       string
	opError  bool
	errorNil bool
}

func outcomeOf(n int, data []byte, err error) outcome {
	o := outcome{n: n, data: string(data), errorNil: err == nil, eof: err == io.EOF,
		timeout: errors.Is(err, os.ErrDeadlineExceeded), closed: errors.Is(err, net.ErrClosed),
		reset: errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() != o.timeout {
		o.timeout = false // a timeout must also say so as a net.Error
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		o.opError, o.op = true, oe.Op
	}
	return o
}

// TestRawIOLikeNetConn: rawIO's Read and Write return what net.Conn's do,
// data and errors alike, so that fasthttp and the data plane's error
// mapping see no difference: data, the end of the stream, a zero-length
// read, a passed deadline, a closed connection, a Close that ends a
// pending read, a write far over the socket buffers to a slow reader, and
// a write to a peer that reset the connection.
func TestRawIOLikeNetConn(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, own *net.TCPConn, peer *net.TCPConn, rw io.ReadWriter) outcome
	}{
		{"data", func(t *testing.T, _, peer *net.TCPConn, rw io.ReadWriter) outcome {
			_, _ = peer.Write([]byte("hello"))
			b := make([]byte, 64)
			n, err := rw.Read(b)
			return outcomeOf(n, b[:n], err)
		}},
		{"end of stream", func(t *testing.T, _, peer *net.TCPConn, rw io.ReadWriter) outcome {
			_, _ = peer.Write([]byte("last"))
			_ = peer.Close()
			got, err := io.ReadAll(rw)
			if err != nil {
				return outcomeOf(len(got), got, err)
			}
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(n, got, err)
		}},
		{"zero-length read", func(t *testing.T, _, _ *net.TCPConn, rw io.ReadWriter) outcome {
			n, err := rw.Read(nil)
			return outcomeOf(n, nil, err)
		}},
		{"deadline passed", func(t *testing.T, own, _ *net.TCPConn, rw io.ReadWriter) outcome {
			_ = own.SetReadDeadline(time.Unix(1, 0))
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(n, nil, err)
		}},
		{"closed", func(t *testing.T, own, _ *net.TCPConn, rw io.ReadWriter) outcome {
			_ = own.Close()
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(n, nil, err)
		}},
		{"closed while reading", func(t *testing.T, own, _ *net.TCPConn, rw io.ReadWriter) outcome {
			done := make(chan outcome, 1)
			go func() {
				n, err := rw.Read(make([]byte, 8))
				done <- outcomeOf(n, nil, err)
			}()
			_ = own.Close()
			return <-done
		}},
		{"large write to a slow reader", func(t *testing.T, _, peer *net.TCPConn, rw io.ReadWriter) outcome {
			want := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
			got := make(chan []byte, 1)
			go func() {
				var buf bytes.Buffer
				b := make([]byte, 1024)
				for buf.Len() < len(want) {
					n, err := peer.Read(b)
					buf.Write(b[:n])
					if err != nil {
						break
					}
				}
				got <- buf.Bytes()
			}()
			n, err := rw.Write(want)
			o := outcomeOf(n, nil, err)
			if !bytes.Equal(<-got, want) {
				o.data = "the peer got other bytes"
			}
			return o
		}},
		{"write after a reset", func(t *testing.T, _, peer *net.TCPConn, rw io.ReadWriter) outcome {
			_ = peer.SetLinger(0)
			_ = peer.Close()
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				_, err = rw.Write([]byte("x"))
				if err == nil {
					time.Sleep(time.Millisecond) // for the RST to arrive
				}
			}
			return outcomeOf(0, nil, err)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			own, peer := tcpPair(t)
			want := tc.run(t, own, peer, own)
			own, peer = tcpPair(t)
			raw := newRawIO(own)
			if raw == nil {
				t.Fatal("no raw I/O for a TCP connection")
			}
			got := tc.run(t, own, peer, raw)
			if got != want {
				t.Errorf("raw I/O: %+v\nnet.Conn: %+v", got, want)
			}
		})
	}
}

// TestWatchConnRawIO: the watchdog gives TCP connections raw I/O and
// leaves others, such as an in-memory pipe, their own Read and Write.
func TestWatchConnRawIO(t *testing.T) {
	w := newWatchdog()
	own, peer := tcpPair(t)
	wc := w.wrap(own, true)
	if wc.raw == nil {
		t.Fatal("a TCP connection has no raw I/O")
	}
	if _, err := wc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(peer, b); err != nil || string(b) != "ping" {
		t.Fatalf("peer read %q, %v", b, err)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if pw := w.wrap(p1, true); pw.raw != nil {
		t.Fatal("a pipe has raw I/O")
	}
}
