package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/routes"
)

func TestConfigValidate(t *testing.T) {
	var c Config
	c.SetDefaults("/data")
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.StateDir != "/data/proxy" || c.AdminTokenFile != "/data/admin.token" || c.Addr != "127.0.0.1:8080" || c.AdminAddr != "127.0.0.1:8081" {
		t.Fatalf("defaults %+v", c)
	}
	bad := c
	bad.Addr = "nope"
	bad.AdminAddr = "127.0.0.1:8080"
	bad.Legacy = "ftp://x"
	bad.AdminToken = "short"
	bad.TrustedProxies = []string{"10.0.0.0/99"}
	bad.InternalHeaders = []string{"bad header"}
	bad.MaxBodyBytes = -1
	bad.Timeout = -time.Second
	bad.RetryBudgetRatio = 2
	bad.Shadow.CandidateQueue = bad.Shadow.Queue + 1
	bad.Shadow.CandidateWorkers = bad.Shadow.Workers + 1
	bad.Shadow.Redact = ShadowRedact{Headers: []string{"bad header"}, Paths: []string{"phone"}}
	err := bad.Validate()
	for _, want := range []string{"addr:", "legacy:", "admin_token:", "trusted_proxies[0]", "internal_headers[0]", "max_body_bytes", "timeout", "retry_budget_ratio",
		"shadow.candidate_queue", "shadow.candidate_workers", "shadow.redact.headers[0]", "shadow.redact.paths[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation misses %q: %v", want, err)
		}
	}
}

// TestHeaderNameRulesAgree: the config's internal_headers and the route
// table's header names follow the same RFC 9110 token rules, so a name
// that one accepts the other does not refuse.
func TestHeaderNameRulesAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"X-Auth-User", true},
		{"x_trace.id", true},
		{"X-Odd!Name", true},
		{"X-Tilde~Pipe|", true},
		{"bad header", false},
		{"X:Colon", false},
		{"X-Quote\"", false},
		{"", false},
		{strings.Repeat("a", 65), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Legacy: "http://127.0.0.1:1", InternalHeaders: []string{tc.name}}
			c.SetDefaults("/data")
			cfgOK := c.Validate() == nil
			doc := &routes.Doc{Modules: []routes.Module{{Name: "m", Sticky: routes.Sticky{Header: tc.name},
				Routes: []routes.RouteDef{{ID: "r", Prefix: "/"}}}}}
			_, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{routes.DefaultLegacy: {URLs: []string{"http://127.0.0.1:1"}}}})
			tableOK := err == nil
			if tc.name == "" {
				tableOK = false // an empty sticky header means none
			}
			if cfgOK != tc.ok || tableOK != tc.ok {
				t.Fatalf("%q: config accepts %v, table accepts %v, want %v", tc.name, cfgOK, tableOK, tc.ok)
			}
		})
	}
}
