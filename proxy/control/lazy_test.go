package control_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/filestore"
)

// blockedFor bounds how long a call may take while the store's open
// hangs: not a timing assertion, a deadlock bound far above any answer
// that does not wait for the open.
const blockedFor = 30 * time.Second

// TestLazySlowOpenBlocksNoReader opens a Lazy whose open hangs (as a dial
// to an unreachable Postgres does until its timeout) and checks that the
// callers beside it are not held by it: Inner answers nil at once, and a
// Load whose context ends returns its context's error, while the open
// goes on. Once the open returns, the store serves, and Close releases
// it.
func TestLazySlowOpenBlocksNoReader(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	dir := t.TempDir()
	lazy := control.NewLazy(func(ctx context.Context) (control.Store, error) {
		close(entered)
		<-release
		return filestore.Open(dir)
	})
	opened := make(chan error, 1)
	go func() { opened <- lazy.Open(context.Background()) }()
	<-entered

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"Inner", func() error {
			if s := lazy.Inner(); s != nil {
				return errors.New("Inner is not nil before the open returned")
			}
			return nil
		}, nil},
		{"Load with a context that ends", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := lazy.Load(ctx)
			return err
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tc.call() }()
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s while the open hangs: %v, want %v", tc.name, err, tc.want)
				}
			case <-time.After(blockedFor):
				t.Fatalf("%s waits for the hanging open of the store", tc.name)
			}
		})
	}

	close(release)
	if err := <-opened; err != nil {
		t.Fatalf("open: %v", err)
	}
	if lazy.Inner() == nil {
		t.Fatal("Inner is nil after the open")
	}
	if _, err := lazy.Load(context.Background()); err != nil {
		t.Fatalf("load after the open: %v", err)
	}
	if err := lazy.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := lazy.Load(context.Background()); !errors.Is(err, control.ErrStoreClosed) {
		t.Fatalf("load after close: %v, want ErrStoreClosed", err)
	}
}

// TestLazyCloseDuringOpen closes a Lazy while its open hangs: Close waits
// for the open and closes the store it opened, and no call reaches it.
func TestLazyCloseDuringOpen(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	inner := &closeCounted{}
	lazy := control.NewLazy(func(ctx context.Context) (control.Store, error) {
		close(entered)
		<-release
		s, err := filestore.Open(t.TempDir())
		inner.Store = s
		return inner, err
	})
	opened := make(chan error, 1)
	go func() { opened <- lazy.Open(context.Background()) }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- lazy.Close() }()
	// Release the open only once Close has begun: another caller then
	// sees the store closed at once (before, the test released it at
	// once, and on a busy machine the open could finish first).
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err := lazy.Open(ctx)
		cancel()
		if errors.Is(err, control.ErrStoreClosed) {
			break
		}
	}
	close(release)
	if err := <-opened; !errors.Is(err, control.ErrStoreClosed) {
		t.Fatalf("an open that a Close overtook: %v, want ErrStoreClosed", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if lazy.Inner() != nil {
		t.Fatal("Inner is not nil after Close")
	}
	if n := inner.closes.Load(); n != 1 {
		t.Fatalf("the store opened during Close was closed %d times, want 1", n)
	}
}

// closeCounted is a Store that counts its Close calls.
type closeCounted struct {
	control.Store
	closes atomic.Int32
}

func (c *closeCounted) Close() error {
	c.closes.Add(1)
	return c.Store.Close()
}
