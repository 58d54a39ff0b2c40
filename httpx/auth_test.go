package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/httpx"
)

func TestBearerAuth(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		auth      string
		status    int
		challenge bool
	}{
		{name: "canonical", token: "s3cret", auth: "Bearer s3cret", status: 200},
		// RFC 7235, section 2.1: the scheme is case-insensitive.
		{name: "lower-case scheme", token: "s3cret", auth: "bearer s3cret", status: 200},
		{name: "upper-case scheme", token: "s3cret", auth: "BEARER s3cret", status: 200},
		{name: "more spaces", token: "s3cret", auth: "Bearer   s3cret ", status: 200},
		{name: "wrong token", token: "s3cret", auth: "bearer s3cre", status: 401, challenge: true},
		{name: "token is case-sensitive", token: "s3cret", auth: "Bearer S3CRET", status: 401, challenge: true},
		{name: "other scheme", token: "s3cret", auth: "Basic s3cret", status: 401, challenge: true},
		{name: "scheme glued to token", token: "s3cret", auth: "Bearers3cret", status: 401, challenge: true},
		{name: "scheme only", token: "s3cret", auth: "Bearer", status: 401, challenge: true},
		{name: "no header", token: "s3cret", status: 401, challenge: true},
		{name: "no token configured", auth: "Bearer ", status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := httpx.NewEcho(httpx.Discard, prometheus.NewRegistry(), 1<<10)
			e.GET("/x", func(c echo.Context) error { return c.NoContent(http.StatusOK) },
				httpx.BearerAuth("test", func() string { return tt.token }))
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("Authorization %q: status %d, want %d; body %s", tt.auth, rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); (got != "") != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want a challenge: %v", got, tt.challenge)
			}
		})
	}
}
