package httpx_test

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/httpx"
)

// scriptedListener returns its errors in turn from Accept, then a
// connection, or blocks until closed when block is set.
type scriptedListener struct {
	errs   []error
	block  bool
	closed chan struct{}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	if l.block {
		<-l.closed
		return nil, net.ErrClosed
	}
	c, _ := net.Pipe()
	return c, nil
}

func (l *scriptedListener) Close() error   { close(l.closed); return nil }
func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestRetryAccept checks that temporary accept errors are retried and
// counted, and that a permanent one is returned at once.
func TestRetryAccept(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: fmt.Errorf("accept4: %w", syscall.EMFILE)}
	tests := []struct {
		name    string
		errs    []error
		wantErr error
		retries int64
	}{
		{"out of descriptors, then a connection", []error{emfile, emfile, syscall.ENFILE}, nil, 3},
		{"aborted before accept", []error{syscall.ECONNABORTED}, nil, 1},
		{"permanent", []error{syscall.EINVAL}, syscall.EINVAL, 0},
		{"closed", []error{net.ErrClosed}, net.ErrClosed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := httpx.RetryAccept(&scriptedListener{errs: tt.errs, closed: make(chan struct{})}, nil)
			c, err := l.Accept()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (c != nil) {
				t.Fatalf("Accept = %v, %v; want error %v", c, err, tt.wantErr)
			}
			if c != nil {
				c.Close()
			}
			if l.Retries() != tt.retries {
				t.Errorf("retries %d, want %d", l.Retries(), tt.retries)
			}
		})
	}
}

// TestRetryAcceptClose checks that Close ends a wait between retries.
func TestRetryAcceptClose(t *testing.T) {
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = syscall.EMFILE
	}
	l := httpx.RetryAccept(&scriptedListener{errs: errs, block: true, closed: make(chan struct{})}, nil)
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	deadline := time.Now().Add(30 * time.Second)
	for l.Retries() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
