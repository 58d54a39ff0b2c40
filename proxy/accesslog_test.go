package proxy_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestAccessLogQuery: the access log has each request's query string,
// with the values of the parameters named in access_log.redact_query (by
// default token, password and the like) replaced, whatever their case or
// encoding, and the names kept.
func TestAccessLogQuery(t *testing.T) {
	cases := []struct {
		name   string
		redact []string
		query  string
		want   string
	}{
		{"plain", nil, "q=shoes&page=2", "q=shoes&page=2"},
		{"none", nil, "", ""},
		{"default names", nil, "id=7&access_token=abc.def&password=hunter2&api_key=k1",
			"id=7&access_token=REDACTED&password=REDACTED&api_key=REDACTED"},
		{"case and encoding", nil, "TOKEN=t1&%74oken=t2&Secret=s&token%5B%5D=t3",
			"TOKEN=REDACTED&%74oken=REDACTED&Secret=REDACTED&token%5B%5D=REDACTED"},
		{"semicolons", nil, "a=1;token=t4", "a=1;token=REDACTED"},
		{"no value", nil, "token&token=&x", "token&token=REDACTED&x"},
		{"configured names", []string{"Voucher"}, "voucher=v1&token=t5", "voucher=REDACTED&token=t5"},
	}
	legacy := proxytest.EchoBackend(t, "legacy")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: legacyOnly, Tune: func(c *proxy.Config) {
				if tc.redact != nil {
					c.AccessLog.RedactQuery = tc.redact
				}
			}})
			url := p.URL + "/search"
			if tc.query != "" {
				url += "?" + tc.query
			}
			if resp, _ := proxytest.Get(t, url, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %d", resp.StatusCode)
			}
			var line map[string]any
			proxytest.Eventually(t, 10*time.Second, func() bool {
				lines := p.Access.Lines()
				if len(lines) == 0 {
					return false
				}
				line = lines[len(lines)-1]
				return true
			}, "no access log line")
			if got, ok := line["query"].(string); !ok || got != tc.want {
				t.Fatalf("query logged as %#v, want %q (line %v)", line["query"], tc.want, line)
			}
		})
	}
}
