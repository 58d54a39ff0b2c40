package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestPathHandling sends paths over a raw socket, as a client wrote them,
// to a module that normalises (the default) and one with path_handling
// as_is: which backend, so which route, each reaches, and the path it
// receives. The route is always chosen by the normalised path, so as_is
// never reaches a route the normalised path would not select; an as_is
// path with a dot segment is refused.
func TestPathHandling(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	norm := proxytest.EchoBackend(t, "norm-svc")
	raw := proxytest.EchoBackend(t, "raw-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: fmt.Sprintf(`
backends:
  norm-svc: {urls: [%q]}
  raw-svc: {urls: [%q]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: norm
    candidate: norm-svc
    mode: extracted
    routes: [{id: norm, prefix: /norm}]
  - name: raw
    candidate: raw-svc
    mode: extracted
    path_handling: as_is
    routes: [{id: raw, prefix: /raw}]
`, norm.URL, raw.URL)})
	for _, tc := range []struct {
		path    string
		backend string // "" for a 400
		uri     string
	}{
		{"/norm//a", "norm-svc", "/norm/a"},
		{"/raw//a", "raw-svc", "/raw//a"},
		{"//raw/a", "raw-svc", "//raw/a"},
		{"/norm/x/../b", "norm-svc", "/norm/b"},
		{"/raw/x/../b", "", ""},
		{"/raw/./b", "", ""},
		{"/raw/a/%2e%2e/b", "", ""},
		{"/raw/a/..%2Fb", "", ""},
		{"/raw/a/..%5cb", "", ""},
		{"/norm/a/..%2Fb", "norm-svc", "/norm/a/..%2Fb"},
		{"/raw/../norm/b", "norm-svc", "/norm/b"},     // the normalised path selects norm
		{"/raw/%2e%2e/norm", "norm-svc", "/norm"},     // so does its escaped form
		{"/norm/../raw/b", "", ""},                    // selects raw, whose path must have no dot segment
		{"/raw/%2e%2e/secret", "legacy", "/secret"},   // the catch-all, normalised
		{"/norm/a%2fb", "norm-svc", "/norm/a%2Fb"},    // escapes of reserved characters stay, in upper case
		{"/raw/a%2fb", "raw-svc", "/raw/a%2fb"},       // byte for byte
		{"/raw/a%2Fb//c", "raw-svc", "/raw/a%2Fb//c"}, //
		{"/raw/%61", "raw-svc", "/raw/%61"},           // matched as /raw/a
		{"/norm/%61", "norm-svc", "/norm/a"},
		{"/raw/a..b/.c", "raw-svc", "/raw/a..b/.c"}, // dots inside a segment are no dot segment
		{"/raw/a?q=/../x", "raw-svc", "/raw/a?q=/../x"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := proxytest.RawGet(p.Addr(), tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if tc.backend == "" {
				if resp.StatusCode != 400 {
					t.Fatalf("status %d (%s), want 400", resp.StatusCode, body)
				}
				return
			}
			var e proxytest.Echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("status %d, no echo: %s", resp.StatusCode, body)
			}
			if e.Backend != tc.backend || e.URI != tc.uri {
				t.Fatalf("reached %s with %q, want %s with %q", e.Backend, e.URI, tc.backend, tc.uri)
			}
		})
	}
}
