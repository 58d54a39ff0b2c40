package httpx_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
)

// TestServeWith checks that ServeWith serves while fn runs, returns fn's
// failure (stopping the server), and nil when ctx ends.
func TestServeWith(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(ctx context.Context, cancel context.CancelFunc, addr string) error
		want error
	}{
		{"ctx ends", func(ctx context.Context, cancel context.CancelFunc, addr string) error {
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}, nil},
		{"fn fails", func(context.Context, context.CancelFunc, string) error { return boom }, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
			err = httpx.ServeWith(ctx, ln, h, func(ctx context.Context) error { return tt.fn(ctx, cancel, ln.Addr().String()) })
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("ServeWith = %v, want %v", err, tt.want)
			}
		})
	}
}
