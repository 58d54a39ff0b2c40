package httpx_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/chaostest"
)

// textServer decodes any JSON object on POST /doc and echoes a path
// parameter on GET /echo/:p, behind NewEcho's middleware.
func textServer() *echo.Echo {
	e := httpx.NewEcho(httpx.Discard, prometheus.NewRegistry(), 1<<16)
	e.POST("/doc", func(c echo.Context) error {
		var v map[string]any
		if err := httpx.DecodeJSON(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	})
	e.GET("/echo/:p", func(c echo.Context) error { return c.String(http.StatusOK, c.Param("p")) })
	return e
}

// TestChaosTextInBodiesAndPaths sends NUL characters (escaped, the only way
// JSON can hold them) and invalid UTF-8 in JSON bodies and paths. A NUL in
// a field is a 422 naming each field that holds one; invalid UTF-8, which
// encoding/json would silently turn into U+FFFD, is a 400, as is either in
// the path.
func TestChaosTextInBodiesAndPaths(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		fields []string
	}{
		{name: "plain", method: "POST", path: "/doc", body: `{"a":"b","n":[1,"x"]}`, status: 200},
		{name: "escaped backslash before u0000", method: "POST", path: "/doc", body: `{"a":"\\u0000"}`, status: 200},
		{name: "top-level field", method: "POST", path: "/doc", body: `{"name":"a\u0000b"}`, status: 422, fields: []string{"name"}},
		{name: "nested field", method: "POST", path: "/doc", body: `{"address":{"city":"x","line1":"\u0000"}}`, status: 422, fields: []string{"address.line1"}},
		{name: "array element", method: "POST", path: "/doc", body: `{"lines":[{"sku":"A"},{"sku":"B\u0000"}]}`, status: 422, fields: []string{"lines[1].sku"}},
		{name: "array of strings", method: "POST", path: "/doc", body: `{"tags":["a",{"b":1},"\u0000",["x","\u0000"]]}`, status: 422, fields: []string{"tags[2]", "tags[3][1]"}},
		{name: "every field at once", method: "POST", path: "/doc", body: `{"a":"\u0000","b":{"c":[]},"d":"\u0000"}`, status: 422, fields: []string{"a", "d"}},
		{name: "field name", method: "POST", path: "/doc", body: `{"na\u0000me":"x"}`, status: 422, fields: []string{"na\x00me"}},
		{name: "invalid UTF-8 in a string", method: "POST", path: "/doc", body: "{\"name\":\"a\xffb\"}", status: 400},
		{name: "truncated UTF-8 sequence", method: "POST", path: "/doc", body: "{\"name\":\"caf\xc3\"}", status: 400},
		{name: "plain path", method: "GET", path: "/echo/abc", status: 200},
		{name: "NUL in path", method: "GET", path: "/echo/a%00b", status: 400},
		{name: "invalid UTF-8 in path", method: "GET", path: "/echo/a%ffb", status: 400},
	}
	e := textServer()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := ""
			if tt.body != "" {
				ct = "application/json"
			}
			rec := do(e, tt.method, tt.path, ct, tt.body)
			var p httpx.Problem
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			ok := rec.Code == tt.status && slices.Equal(fields, tt.fields)
			chaostest.Report(t, ok, fmt.Sprintf("%s %s with body %q", tt.method, tt.path, tt.body),
				fmt.Sprintf("%d, invalid fields %q", tt.status, tt.fields),
				fmt.Sprintf("%d, invalid fields %q: %s", rec.Code, fields, rec.Body))
		})
	}
}
