package proxy_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestChaosStoreDown cuts a replica off its Postgres control store and
// asks the admin API for what lives there: the service registry and the
// audit log. A store that is down is the server's condition: each must be
// answered 503 store-unavailable, with nothing of the store's own error
// (its address, its driver's message) in the problem.
func TestChaosStoreDown(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	g, gated := dbtest.NewGate(t, dsn)
	gu, err := url.Parse(gated)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{dsn: dsn, legacy: proxytest.EchoBackend(t, "legacy"), svc: proxytest.EchoBackend(t, "orders-svc")}
	p := c.start(t, gated)
	register := `{"url":"` + c.svc.URL + `","ttl_seconds":60}`
	// The store works before it goes.
	if resp, m := adminDo(t, http.MethodPut, p.AdminURL+"/v1/services/orders/instances", proxytest.Token, register); resp.StatusCode/100 != 2 {
		t.Fatalf("register with the store up: %d %v", resp.StatusCode, m)
	}
	g.Close()

	tests := []struct{ name, method, path, body string }{
		{"list the services", http.MethodGet, "/v1/services", ""},
		{"register an instance", http.MethodPut, "/v1/services/orders/instances", register},
		{"deregister an instance", http.MethodDelete, "/v1/services/orders/instances?url=" + c.svc.URL, ""},
		{"read the audit log", http.MethodGet, "/v1/audit", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, m := adminDo(t, tt.method, p.AdminURL+tt.path, proxytest.Token, tt.body)
			detail, _ := m["detail"].(string)
			leaks := strings.Contains(detail, gu.Host) || strings.Contains(fmt.Sprint(m), "dial") || strings.Contains(fmt.Sprint(m), "connect")
			ok := resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Content-Type") == "application/problem+json" &&
				strings.HasSuffix(fmt.Sprint(m["type"]), "store-unavailable") && !leaks
			chaostest.Report(t, ok, tt.method+" "+tt.path+" with the control store down",
				"503 problem store-unavailable, without the store's error", fmt.Sprintf("%d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), m))
		})
	}
}
