package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
)

func queryContext(target string) echo.Context {
	e := echo.New()
	return e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), httptest.NewRecorder())
}

func TestQuery(t *testing.T) {
	tests := []struct {
		target  string
		wantErr string
		check   func(t *testing.T, q *httpx.Query)
	}{
		{target: "/x?limit=5&active=true&q=mug", check: func(t *testing.T, q *httpx.Query) {
			if q.Limit(100) != 5 || *q.Bool("active") != true || q.String("q") != "mug" {
				t.Errorf("parsed wrong values")
			}
		}},
		{target: "/x", check: func(t *testing.T, q *httpx.Query) {
			if q.Limit(100) != 0 || q.Bool("active") != nil || q.Int64("customer_id") != 0 {
				t.Errorf("absent parameters must read as zero values")
			}
		}},
		{target: "/x?actve=false", wantErr: `unknown query parameter "actve"`},
		{target: "/x?limit=ten", wantErr: `"limit" must be an integer between 1 and 100, not "ten"`},
		{target: "/x?limit=0", wantErr: `"limit" must be an integer between 1 and 100, not "0"`},
		{target: "/x?limit=101", wantErr: `"limit" must be an integer between 1 and 100, not "101"`},
		{target: "/x?customer_id=1.5", wantErr: `"customer_id" must be an integer`},
		{target: "/x?active=yes", wantErr: `"active" must be true or false, not "yes"`},
		{target: "/x?limit=1&limit=2", wantErr: `"limit" is given more than once`},
		{target: "/x?q=%zz", wantErr: `malformed query string: invalid URL escape "%zz"`},
		{target: "/x?q=mug&cursor=%%%", wantErr: `malformed query string`},
		{target: "/x?q=a;b", wantErr: `malformed query string`},
		{target: "/x?q=a%00b", wantErr: `"q" must not contain a NUL character`},
		{target: "/x?q=%ff", wantErr: `"q" must be valid UTF-8`},
		{target: "/x?limit=x&active=1", wantErr: `"limit" must be an integer between 1 and 100, not "x"; "active" must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			q := httpx.NewQuery(queryContext(tt.target), "limit", "active", "q", "customer_id", "cursor")
			q.Limit(100)
			q.Bool("active")
			q.Int64("customer_id")
			err := q.Err()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Err = %v", err)
				}
				tt.check(t, q)
				return
			}
			var p *httpx.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, tt.wantErr) {
				t.Fatalf("Err = %v, want a 400 containing %q", err, tt.wantErr)
			}
		})
	}
}
