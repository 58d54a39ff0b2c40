package dataplane

import (
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestCanaryCohortsOverTenThousandKeys proves the canary split: raising
// the weight 10 → 25 → 50 → 100 only ever moves users from legacy to the
// candidate, and each split is within ±2% of its weight.
func TestCanaryCohortsOverTenThousandKeys(t *testing.T) {
	const keys = 10000
	for _, key := range []struct {
		name   string
		sticky routes.Sticky
		set    func(ctx *fasthttp.RequestCtx, k string)
	}{
		{"header", routes.Sticky{Header: "X-User-Id"}, func(ctx *fasthttp.RequestCtx, k string) { ctx.Request.Header.Set("X-User-Id", k) }},
		{"cookie", routes.Sticky{Cookie: "session"}, func(ctx *fasthttp.RequestCtx, k string) { ctx.Request.Header.SetCookie("session", k) }},
	} {
		t.Run(key.name, func(t *testing.T) {
			rt := &routeRT{
				Route:  &routes.Route{ID: "orders", Module: "orders", Mode: routes.ModeCanary, Sticky: key.sticky},
				legacy: &backend{name: "legacy"}, candidate: &backend{name: "orders-svc"}, salt: saltFor("orders"),
			}
			onCandidate := make([]bool, keys)
			for _, w := range []int{10, 25, 50, 100} {
				rt.Weight = w
				n := 0
				for i := range keys {
					var ctx fasthttp.RequestCtx
					key.set(&ctx, fmt.Sprintf("user-%d", i))
					st := &reqState{ctx: &ctx}
					be, reason := rt.decide(st)
					cand := be == rt.candidate
					if cand != (reason == reasonCanaryCandidate) {
						t.Fatalf("reason %q does not match backend %s", reason, be.name)
					}
					if onCandidate[i] && !cand {
						t.Fatalf("weight %d moved user-%d back to legacy", w, i)
					}
					// The same key decides the same way every time.
					if again, _ := rt.decide(st); again != be {
						t.Fatalf("user-%d is not sticky", i)
					}
					onCandidate[i] = cand
					if cand {
						n++
					}
				}
				share := float64(n) / keys * 100
				t.Logf("weight %3d%%: %5d of %d keys on the candidate (%.2f%%)", w, n, keys, share)
				if math.Abs(share-float64(w)) > 2 {
					t.Fatalf("weight %d: %.2f%% on the candidate, more than 2 points off", w, share)
				}
			}
		})
	}
}

// TestCanaryFallsBackToClientIP uses the client's address when the request
// has no sticky key.
func TestCanaryFallsBackToClientIP(t *testing.T) {
	rt := &routeRT{
		Route:  &routes.Route{ID: "r", Module: "m", Mode: routes.ModeCanary, Weight: 50, Sticky: routes.Sticky{Header: "X-User-Id"}},
		legacy: &backend{name: "legacy"}, candidate: &backend{name: "svc"}, salt: saltFor("m"),
	}
	counts := map[string]int{}
	for i := range 2000 {
		var ctx fasthttp.RequestCtx
		st := &reqState{ctx: &ctx}
		st.client = mustAddr(fmt.Sprintf("10.0.%d.%d", i/250, i%250))
		be, _ := rt.decide(st)
		counts[be.name]++
		again, _ := rt.decide(st)
		if again != be {
			t.Fatal("the client address is not sticky")
		}
	}
	if counts["svc"] < 800 || counts["legacy"] < 800 {
		t.Fatalf("split by address is lopsided: %v", counts)
	}
}

// TestCohortsDifferPerModule checks that modules salt the hash, so that the
// same users are not always the first to try every extraction.
func TestCohortsDifferPerModule(t *testing.T) {
	a, b := saltFor("orders"), saltFor("catalog")
	same := 0
	for i := range 1000 {
		k := []byte(fmt.Sprintf("user-%d", i))
		if (bucket(a, k) < 1000) == (bucket(b, k) < 1000) {
			same++
		}
	}
	// Independent 10% cohorts agree on about 82% of users; identical
	// cohorts would agree on all of them.
	if same > 900 {
		t.Fatalf("cohorts of two modules agree on %d of 1000 users", same)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
