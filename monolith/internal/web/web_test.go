package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/monolith/internal/web"
)

func context(target string) echo.Context {
	e := echo.New()
	return e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), httptest.NewRecorder())
}

func TestPathID(t *testing.T) {
	tests := []struct {
		param string
		want  int64
		ok    bool
	}{
		{"42", 42, true},
		{"0", 0, false},
		{"-3", 0, false},
		{"abc", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		c := context("/")
		c.SetParamNames("id")
		c.SetParamValues(tt.param)
		got, err := web.PathID(c, "id")
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("PathID(%q) = %d, %v", tt.param, got, err)
		}
	}
}
