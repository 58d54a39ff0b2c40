package httpx_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
)

// TestBaseURL parses the addresses clients are given: a bare host:port
// gets http://, a trailing slash goes, and what is not an http(s) URL is
// refused, naming the address.
func TestBaseURL(t *testing.T) {
	cases := []struct {
		raw, want, err string
	}{
		{"127.0.0.1:8081", "http://127.0.0.1:8081", ""},
		{"https://svc.example/v1/", "https://svc.example/v1", ""},
		{"http://127.0.0.1:9103/v1", "http://127.0.0.1:9103/v1", ""},
		{"ftp://svc.example", "", `api address "ftp://svc.example" is not an http(s) URL`},
		{"http://", "", `api address "http://" is not an http(s) URL`},
	}
	for _, tc := range cases {
		u, err := httpx.BaseURL(tc.raw, "api address")
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: %v, want %q", tc.raw, err, tc.err)
			}
		case err != nil || u.String() != tc.want:
			t.Errorf("%q: %v %v, want %s", tc.raw, u, err, tc.want)
		}
	}
}

// TestReadProblem reads a problem document, and makes one of a body that
// is not.
func TestReadProblem(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   httpx.Problem
	}{
		{"a problem", 409, `{"type":"` + httpx.ProblemTypeBase + `saga-state","title":"Saga state","status":409,"detail":"not manual"}`,
			httpx.Problem{Type: httpx.ProblemTypeBase + "saga-state", Title: "Saga state", Status: 409, Detail: "not manual"}},
		{"plain text", http.StatusBadGateway, "upstream down\n", httpx.Problem{Type: "about:blank", Title: http.StatusText(http.StatusBadGateway), Status: http.StatusBadGateway, Detail: "upstream down"}},
		{"JSON without a title", 404, `{"error":"no"}`, httpx.Problem{Type: "about:blank", Title: http.StatusText(404), Status: 404, Detail: `{"error":"no"}`}},
	}
	for _, tc := range cases {
		p := httpx.ReadProblem(tc.status, []byte(tc.body))
		if p.Type != tc.want.Type || p.Title != tc.want.Title || p.Status != tc.want.Status || strings.TrimSpace(p.Detail) != tc.want.Detail {
			t.Errorf("%s: %+v, want %+v", tc.name, *p, tc.want)
		}
	}
}
