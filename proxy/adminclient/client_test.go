package adminclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-Strangler-Actor") != "me@host" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		switch r.URL.Path {
		case "/v1/modules/orders/canary":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(422)
			_, _ = w.Write([]byte(`{"type":"x","title":"Invalid input","status":422,"errors":[{"field":"weight","message":"must be 0 to 100"},{"field":"mode","message":"bad"}]}`))
		case "/v1/modules/plain":
			w.WriteHeader(502)
			_, _ = w.Write([]byte("upstream sad"))
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	c, err := New(strings.TrimPrefix(srv.URL, "http://"), "tok", WithActor("me@host"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Canary(ctx, "orders", 500)
	if StatusOf(err) != 422 || err.Error() != "Invalid input: weight: must be 0 to 100; mode: bad" {
		t.Fatalf("got %v", err)
	}
	_, err = c.Module(ctx, "plain")
	if StatusOf(err) != 502 || !strings.Contains(err.Error(), "upstream sad") {
		t.Fatalf("got %v", err)
	}
	if err := c.Keepalive(ctx, "s", "http://x:1", time.Second, nil); err == nil {
		t.Fatal("a 1s TTL was accepted")
	}
	if _, err := New("ftp://x", "t"); err == nil {
		t.Fatal("a non-HTTP address was accepted")
	}
	if _, err := New("127.0.0.1:1", "t", WithHTTPClient(&http.Client{Timeout: time.Second})); err != nil {
		t.Fatal(err)
	}
}
