package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// policyTable is a table whose orders module is extracted to orders-svc,
// defined by backend, with the fallback policy fallback ("" leaves it out).
func policyTable(backend, fallback string) string {
	policy := ""
	if fallback != "" {
		policy = "\n    fallback: " + fallback
	}
	return `
backends:
  orders-svc:
` + backend + `
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    mode: extracted` + policy + `
    routes: [{id: orders, prefix: /api/orders}]
`
}

// TestFallbackPolicy sends GET, POST and PUT to a module whose candidate
// cannot take them (dead, breaker open, no instance) under each fallback
// policy: legacy serves those the policy lets fall back, the others get a
// 503 candidate-unavailable problem, and each is counted and logged under
// its decision.
func TestFallbackPolicy(t *testing.T) {
	causes := []struct {
		name, reason, detail string
		backend              func(t *testing.T) string
		// prime trips the breaker before the requests, so that each
		// meets it open.
		prime bool
	}{
		{"dead candidate", "unreachable", "could not be reached", func(t *testing.T) string {
			return `    urls: ["` + deadURL(t) + `"]
    breaker: {disabled: true}`
		}, false},
		{"breaker open", "breaker_open", "circuit breaker is open", func(t *testing.T) string {
			return `    urls: ["` + deadURL(t) + `"]
    breaker: {consecutive_failures: 1, open_for: 1h}`
		}, true},
		{"no instance", "no_instance", "has no healthy instance", func(t *testing.T) string {
			return "    service: orders"
		}, false},
	}
	// fallsBack says which methods legacy serves under each policy.
	policies := []struct {
		policy    string
		fallsBack map[string]bool
	}{
		{"", map[string]bool{http.MethodGet: true, http.MethodPost: true, http.MethodPut: true}},
		{"all", map[string]bool{http.MethodGet: true, http.MethodPost: true, http.MethodPut: true}},
		{"safe", map[string]bool{http.MethodGet: true}},
		{"none", map[string]bool{}},
	}
	for _, cause := range causes {
		for _, pol := range policies {
			name := pol.policy
			if name == "" {
				name = "default"
			}
			t.Run(cause.name+"/"+name, func(t *testing.T) {
				legacy := proxytest.EchoBackend(t, "legacy")
				p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: policyTable(cause.backend(t), pol.policy)})
				if cause.prime {
					resp, err := http.Get(p.URL + "/api/orders/prime")
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if st := metric(t, p, "strangler_proxy_breaker_state", `backend="orders-svc"`); st != 2 {
						t.Fatalf("breaker state %v after the priming request, want 2 (open)", st)
					}
				}
				for i, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
					fbBefore := metric(t, p, "strangler_proxy_fallbacks_total", `module="orders"`, `reason="`+cause.reason+`"`)
					refBefore := metric(t, p, "strangler_proxy_fallbacks_refused_total", `module="orders"`, `reason="`+cause.reason+`"`)
					id := fmt.Sprintf("policy-%s-%d", name, i)
					req, _ := http.NewRequest(method, p.URL+"/api/orders/1", strings.NewReader(`{"qty":1}`))
					req.Header.Set("X-Request-Id", id)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					fb := metric(t, p, "strangler_proxy_fallbacks_total", `module="orders"`, `reason="`+cause.reason+`"`) - fbBefore
					refused := metric(t, p, "strangler_proxy_fallbacks_refused_total", `module="orders"`, `reason="`+cause.reason+`"`) - refBefore
					decision := "fallback_" + cause.reason
					if pol.fallsBack[method] {
						if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"backend":"legacy"`) {
							t.Fatalf("%s: %d %s; want legacy's answer", method, resp.StatusCode, body)
						}
						if fb != 1 || refused != 0 {
							t.Errorf("%s: counted %v fallbacks and %v refused, want 1 and 0", method, fb, refused)
						}
					} else {
						var pr struct{ Type, Detail string }
						_ = json.Unmarshal(body, &pr)
						if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" ||
							!strings.HasSuffix(pr.Type, "#candidate-unavailable") || !strings.Contains(pr.Detail, cause.detail) || resp.Header.Get("Retry-After") == "" {
							t.Fatalf("%s: %d %s (Retry-After %q); want a 503 candidate-unavailable problem saying %q",
								method, resp.StatusCode, body, resp.Header.Get("Retry-After"), cause.detail)
						}
						if fb != 0 || refused != 1 {
							t.Errorf("%s: counted %v fallbacks and %v refused, want 0 and 1", method, fb, refused)
						}
						decision = "no_fallback_" + cause.reason
					}
					proxytest.Eventually(t, 5*time.Second, func() bool {
						for _, l := range p.Access.Lines() {
							if l["request_id"] == id {
								return l["decision"] == decision
							}
						}
						return false
					}, "%s: no access line with decision %q:\n%s", method, decision, p.Access.String())
				}
				want := len(pol.fallsBack)
				if cause.prime && pol.fallsBack[http.MethodGet] {
					want++ // the priming GET
				}
				if legacy.Hits() != want {
					t.Errorf("legacy served %d requests, want %d", legacy.Hits(), want)
				}
			})
		}
	}
}

// TestFallbackPolicyKeepsCandidateAnswer: a request that reached the
// candidate and that its policy keeps from legacy gets the candidate's own
// answer, not a 503, and is counted as refused.
func TestFallbackPolicyKeepsCandidateAnswer(t *testing.T) {
	for _, tc := range []struct {
		policy, method string
		legacy         bool
	}{
		{"safe", http.MethodGet, true},
		{"safe", http.MethodPut, false},
		{"none", http.MethodGet, false},
	} {
		t.Run(tc.policy+"/"+tc.method, func(t *testing.T) {
			legacy := proxytest.EchoBackend(t, "legacy")
			cand := proxytest.HandlerBackend(t, "orders-svc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			}))
			p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: policyTable(`    urls: ["`+cand.URL+`"]
    breaker: {disabled: true}`, tc.policy)})
			req, _ := http.NewRequest(tc.method, p.URL+"/api/orders/1", strings.NewReader(`{"qty":1}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fb := metric(t, p, "strangler_proxy_fallbacks_total", `reason="status_5xx"`)
			refused := metric(t, p, "strangler_proxy_fallbacks_refused_total", `reason="status_5xx"`)
			if tc.legacy {
				if resp.StatusCode != http.StatusOK || fb != 1 || refused != 0 {
					t.Fatalf("%d %s, %v fallbacks, %v refused; want legacy's answer, 1 and 0", resp.StatusCode, body, fb, refused)
				}
				return
			}
			if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "boom") || fb != 0 || refused != 1 {
				t.Fatalf("%d %s, %v fallbacks, %v refused; want the candidate's 500, 0 and 1", resp.StatusCode, body, fb, refused)
			}
			proxytest.Eventually(t, 5*time.Second, func() bool {
				return strings.Contains(p.Access.String(), `"decision":"no_fallback_5xx"`)
			}, "no access line with decision no_fallback_5xx:\n%s", p.Access.String())
		})
	}
}

// TestFallbackPolicyThroughAdminAPI: a module's fallback policy goes in
// through PUT /v1/table (JSON and YAML), comes back from GET /v1/table,
// survives a module operation and a restart on the persisted state, and
// a policy that is not one of all, safe and none refuses the whole table
// with a 422 that names the field, leaving the old one serving.
func TestFallbackPolicyThroughAdminAPI(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	dead := deadURL(t)
	dir := t.TempDir()
	ctx := context.Background()
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir})
	table := func(policy string) string {
		return `{"backends":{"orders-svc":{"urls":["` + dead + `"],"breaker":{"disabled":true}}},"modules":[` +
			`{"name":"default","routes":[{"id":"default","prefix":"/"}]},` +
			`{"name":"orders","candidate":"orders-svc","fallback":"` + policy + `","routes":[{"id":"orders","prefix":"/api/orders"}]}]}`
	}
	policyOf := func(p *proxytest.Proxy) routes.Fallback {
		t.Helper()
		tbl, err := p.Admin(t).Table(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tbl.Table.Module("orders").Fallback
	}
	post := func(p *proxytest.Proxy) int {
		t.Helper()
		resp, err := http.Post(p.URL+"/api/orders", "application/json", strings.NewReader(`{"item":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if resp, body := adminDo(t, http.MethodPut, p.AdminURL+"/v1/table", proxytest.Token, table("none")); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/table: %d %v", resp.StatusCode, body)
	}
	c := p.Admin(t)
	if m, err := c.Flip(ctx, "orders"); err != nil || m.Fallback != routes.FallbackNone {
		t.Fatalf("flip: %+v, %v; want the module with fallback none", m, err)
	}
	if got := policyOf(p); got != routes.FallbackNone {
		t.Fatalf("GET /v1/table after a flip: fallback %q, want none", got)
	}
	if st := post(p); st != http.StatusServiceUnavailable {
		t.Fatalf("POST to the dead candidate under fallback none: %d, want 503", st)
	}

	before, _ := c.Table(ctx)
	resp, body := adminDo(t, http.MethodPut, p.AdminURL+"/v1/table", proxytest.Token, table("sometimes"))
	if detail, _ := body["detail"].(string); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(detail, "modules[orders].fallback") {
		t.Fatalf("PUT with fallback sometimes: %d %v; want 422 naming modules[orders].fallback", resp.StatusCode, body)
	}
	if after, _ := c.Table(ctx); after.Version != before.Version || policyOf(p) != routes.FallbackNone {
		t.Fatalf("a refused table moved the version from %d to %d", before.Version, after.Version)
	}

	if _, err := c.ReplaceTableYAML(ctx, []byte(policyTable(`    urls: ["`+dead+`"]
    breaker: {disabled: true}`, "safe")), 0); err != nil {
		t.Fatal(err)
	}
	if got := policyOf(p); got != routes.FallbackSafe {
		t.Fatalf("GET /v1/table after a YAML PUT: fallback %q, want safe", got)
	}
	p.Stop(t)
	p2 := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Dir: dir})
	if got := policyOf(p2); got != routes.FallbackSafe {
		t.Fatalf("after a restart: fallback %q, want safe", got)
	}
	if st := post(p2); st != http.StatusServiceUnavailable {
		t.Fatalf("POST after a restart under fallback safe: %d, want 503", st)
	}
	if resp, e := proxytest.Get(t, p2.URL+"/api/orders/1", nil); resp.StatusCode != http.StatusOK || e == nil || e.Backend != "legacy" {
		t.Fatalf("GET after a restart under fallback safe: %d %+v, want legacy's answer", resp.StatusCode, e)
	}
}
