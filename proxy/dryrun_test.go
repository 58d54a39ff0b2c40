package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// orderStore is the app of TestShadowDryRunContract: a POST creates an
// order, and a candidate honours X-Strangler-Shadow as docs/proxy.md
// tells foreign apps to: a dry-run copy does everything but commit, and
// answers as if it had.
type orderStore struct {
	mu      sync.Mutex
	orders  []string
	commits int
	marks   map[string][]string // X-Strangler-Shadow by method
}

func (s *orderStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mark := r.Header.Get("X-Strangler-Shadow")
	s.marks[r.Method] = append(s.marks[r.Method], mark)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost {
		fmt.Fprintf(w, `{"orders":%d}`, len(s.orders))
		return
	}
	var in struct{ SKU string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.SKU == "" {
		http.Error(w, `{"error":"sku"}`, http.StatusBadRequest)
		return
	}
	// Everything up to the commit runs for a dry-run copy too: the
	// validation above, the new id below, the answer.
	next := append(s.orders, in.SKU)
	if mark != "dry-run" {
		s.orders = next
		s.commits++
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":%d,"sku":%q}`, len(next), in.SKU)
}

// TestShadowDryRunContract shows the header contract of shadowed writes:
// legacy's writes never carry X-Strangler-Shadow, even when the client
// sends one;
// the candidate's copy of a read says copy and of a write dry-run; a
// candidate that honours dry-run commits nothing, and its answers, given
// as if it had committed, match legacy's.
func TestShadowDryRunContract(t *testing.T) {
	legacyApp := &orderStore{marks: map[string][]string{}}
	candApp := &orderStore{marks: map[string][]string{}}
	legacy := proxytest.HandlerBackend(t, "legacy", legacyApp)
	cand := proxytest.HandlerBackend(t, "orders-svc", candApp)
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: shadowTable(cand.URL, `    shadow: {writes: true, ignore: ["$.id"]}`)})
	for _, sku := range []string{"a", "b"} {
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/orders", strings.NewReader(`{"sku":"`+sku+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Strangler-Shadow", "dry-run") // a client's forgery, stripped
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: status %d", resp.StatusCode)
		}
	}
	getBody(t, p.URL+"/api/orders")
	st := waitCompared(t, p, 3)
	legacyApp.mu.Lock()
	candApp.mu.Lock()
	defer legacyApp.mu.Unlock()
	defer candApp.mu.Unlock()
	if legacyApp.commits != 2 || candApp.commits != 0 {
		t.Fatalf("commits: legacy %d, candidate %d; want 2 and 0", legacyApp.commits, candApp.commits)
	}
	// Legacy's only marks are the proxy's own second questions about a
	// read that mismatched (the noise check), marked copy.
	for method, marks := range legacyApp.marks {
		for _, m := range marks {
			if m != "" && (method != http.MethodGet || m != "copy") {
				t.Fatalf("legacy got X-Strangler-Shadow: %s on a %s", m, method)
			}
		}
	}
	if fmt.Sprint(legacyApp.marks[http.MethodPost]) != "[ ]" {
		t.Fatalf("legacy's POSTs were marked %q", legacyApp.marks[http.MethodPost])
	}
	if got := fmt.Sprint(candApp.marks[http.MethodPost], candApp.marks[http.MethodGet]); got != "[dry-run dry-run] [copy]" {
		t.Fatalf("candidate's marks (POST, GET): %s", got)
	}
	// The dry-run answers match legacy's but for the ids, which a dry run
	// that commits nothing cannot know and the table ignores; the read
	// does not: the candidate committed nothing, so it counts no orders.
	if st.Compared != 3 || st.Matches != 2 || st.Mismatches != 1 {
		t.Fatalf("shadow stats %+v, want 3 compared, 2 matches (the writes), 1 mismatch (the read)", st)
	}
}
