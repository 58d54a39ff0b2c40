package proxy_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// cohortSecret is the cohort secret the replicas of these tests share.
const cohortSecret = "cohort-secret-shared-by-replicas"

// cohortTable canaries /api/orders at weight, keyed on X-User-Id, then the
// sub of a bearer token, behind a signed cohort cookie.
func cohortTable(candidate string, weight int) string {
	return fmt.Sprintf(`
backends:
  orders-svc: {urls: [%q]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    mode: canary
    weight: %d
    sticky: {header: X-User-Id, jwt: {claim: sub}, cohort_cookie: {name: cohort}}
    routes: [{id: orders, prefix: /api/orders}]
`, candidate, weight)
}

// startCohortProxy starts a proxy on cohortTable that trusts loopback's
// X-Forwarded-For, so that a test can give each user an address of its own.
func startCohortProxy(t *testing.T, legacy, candidate string, weight int, secret string) *proxytest.Proxy {
	t.Helper()
	return proxytest.Start(t, proxytest.Config{Legacy: legacy, Routes: cohortTable(candidate, weight), Tune: func(c *proxy.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.CohortSecret = secret
	}})
}

// visit is one request of a user: its side and the cohort cookie set on
// the answer, if any.
type visit struct {
	side   string
	cookie *http.Cookie
}

func get(t *testing.T, url string, header map[string]string) visit {
	t.Helper()
	resp, e := proxytest.Get(t, url, header)
	if e == nil {
		t.Fatalf("GET %s %v: status %d, no echo", url, header, resp.StatusCode)
	}
	v := visit{side: e.Backend}
	for _, c := range resp.Cookies() {
		if c.Name == "cohort" {
			v.cookie = c
		}
	}
	return v
}

func bearer(t *testing.T, sub string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("the app's own key"))
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// TestCohortLoginMidSession: a user browses anonymously, changes address,
// then logs in (X-User-Id, or a bearer token whose sub names them), and
// stays on one side at every weight, thanks to the cohort cookie set on
// the first answer. Without the cookie the logged-in key would move some
// of them, which the test also shows.
func TestCohortLoginMidSession(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	cand := proxytest.EchoBackend(t, "orders-svc")
	const users = 40
	for _, weight := range []int{0, 1, 10, 50, 90, 99, 100} {
		t.Run(fmt.Sprintf("weight=%d", weight), func(t *testing.T) {
			p := startCohortProxy(t, legacy.URL, cand.URL, weight, cohortSecret)
			url := p.URL + "/api/orders/1"
			moved, onCandidate := 0, 0
			for u := range users {
				id := fmt.Sprintf("user-%d", u)
				first := get(t, url, map[string]string{"X-Forwarded-For": fmt.Sprintf("10.1.%d.%d", u/200, u%200+1)})
				if first.cookie == nil {
					t.Fatalf("%s: the first answer sets no cohort cookie", id)
				}
				if !first.cookie.HttpOnly || first.cookie.SameSite != http.SameSiteLaxMode || first.cookie.Path != "/" || first.cookie.MaxAge != 30*24*3600 || first.cookie.Secure {
					t.Fatalf("%s: cohort cookie %+v, want HttpOnly, SameSite=Lax, Path=/, Max-Age 30 days, not Secure over plain HTTP", id, first.cookie)
				}
				jar := "cohort=" + first.cookie.Value
				login := map[string]string{"X-User-Id": id}
				if u%2 == 1 {
					login = map[string]string{"Authorization": bearer(t, id)}
				}
				steps := []map[string]string{
					{"Cookie": jar, "X-Forwarded-For": fmt.Sprintf("10.2.%d.%d", u/200, u%200+1)}, // a new address
					withCookie(login, jar), // logged in
					withCookie(login, jar),
				}
				for i, h := range steps {
					v := get(t, url, h)
					if v.side != first.side {
						t.Fatalf("%s: step %d is served by %s, the first request by %s", id, i+1, v.side, first.side)
					}
					if v.cookie != nil {
						t.Fatalf("%s: step %d got a new cohort cookie for a valid one", id, i+1)
					}
				}
				if get(t, url, login).side != first.side {
					moved++ // the logged-in key alone would have moved them
				}
				if first.side == "orders-svc" {
					onCandidate++
				}
			}
			switch weight {
			case 0:
				if onCandidate != 0 {
					t.Fatalf("weight 0: %d users on the candidate", onCandidate)
				}
			case 100:
				if onCandidate != users {
					t.Fatalf("weight 100: %d of %d users on the candidate", onCandidate, users)
				}
			case 50:
				if moved == 0 {
					t.Fatalf("weight 50: no user's logged-in key alone changes side; the test shows nothing")
				}
			}
			t.Logf("weight %d: %d of %d users on the candidate, all kept their side; %d would have moved without the cookie", weight, onCandidate, users, moved)
		})
	}
}

func withCookie(h map[string]string, cookie string) map[string]string {
	out := map[string]string{"Cookie": cookie}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// TestCohortCookieAcrossReplicas: two proxies that share the cohort secret
// accept each other's cookies, so a user who got theirs from one keeps
// their side on the other after logging in; a proxy with another secret
// ignores the cookie and sets its own.
func TestCohortCookieAcrossReplicas(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	cand := proxytest.EchoBackend(t, "orders-svc")
	a := startCohortProxy(t, legacy.URL, cand.URL, 50, cohortSecret)
	b := startCohortProxy(t, legacy.URL, cand.URL, 50, cohortSecret)
	other := startCohortProxy(t, legacy.URL, cand.URL, 50, "another-secret-of-16-chars")
	for u := range 30 {
		id := fmt.Sprintf("user-%d", u)
		first := get(t, a.URL+"/api/orders/1", map[string]string{"X-Forwarded-For": fmt.Sprintf("10.3.0.%d", u+1)})
		jar := "cohort=" + first.cookie.Value
		v := get(t, b.URL+"/api/orders/1", map[string]string{"Cookie": jar, "X-User-Id": id})
		if v.side != first.side || v.cookie != nil {
			t.Fatalf("%s: replica b serves %s (new cookie %v), replica a served %s", id, v.side, v.cookie != nil, first.side)
		}
		if w := get(t, other.URL+"/api/orders/1", map[string]string{"Cookie": jar, "X-User-Id": id}); w.cookie == nil {
			t.Fatalf("%s: a proxy with another secret took the cookie", id)
		}
	}
}

// TestCohortCookieForged: a cohort cookie whose key or MAC was changed, or
// that is not one at all, is ignored: the request is keyed on the next
// source and gets a fresh cookie that holds that key.
func TestCohortCookieForged(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	cand := proxytest.EchoBackend(t, "orders-svc")
	p := startCohortProxy(t, legacy.URL, cand.URL, 50, cohortSecret)
	url := p.URL + "/api/orders/1"
	good := get(t, url, map[string]string{"X-User-Id": "alice"}).cookie
	key, mac, _ := strings.Cut(good.Value, ".")
	forgedKey := base64.RawURLEncoding.EncodeToString([]byte("mallory"))
	for name, value := range map[string]string{
		"other key":     forgedKey + "." + mac,
		"altered mac":   key + "." + strings.Repeat("A", len(mac)),
		"no mac":        key,
		"empty":         "",
		"not base64":    "!!!." + mac,
		"huge":          strings.Repeat("A", 4000) + "." + mac,
		"two dots":      key + "." + mac + ".x",
		"truncated mac": key + "." + mac[:10],
	} {
		t.Run(name, func(t *testing.T) {
			v := get(t, url, map[string]string{"Cookie": "cohort=" + value, "X-User-Id": "bob"})
			if v.cookie == nil {
				t.Fatal("a forged cookie was taken")
			}
			k, _, _ := strings.Cut(v.cookie.Value, ".")
			got, err := base64.RawURLEncoding.DecodeString(k)
			if err != nil || string(got) != "bob" {
				t.Fatalf("the fresh cookie holds %q (%v), want the header's key bob", got, err)
			}
		})
	}
}

// TestCohortSecretFile: without cohort_secret the proxy keeps a generated
// secret in its state dir, mode 0600, and reuses it on the next start, so
// that a restart keeps its users' cookies; it writes nothing elsewhere.
func TestCohortSecretFile(t *testing.T) {
	dir := t.TempDir()
	cfg := proxy.Config{AdminToken: proxytest.Token, StateDir: filepath.Join(dir, "state"), Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}
	var secrets []string
	for range 2 {
		p, err := proxy.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = p.Close()
		path := filepath.Join(dir, "state", "cohort.secret")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("no secret in the state dir: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret file mode %v, want 0600", fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		secrets = append(secrets, string(b))
	}
	if secrets[0] != secrets[1] || len(strings.TrimSpace(secrets[0])) < 16 {
		t.Fatalf("secrets of two starts: %q, %q", secrets[0], secrets[1])
	}
	if _, err := os.Stat(".strangler/cohort.secret"); err == nil {
		t.Fatal("the proxy wrote a secret in the working directory")
	}
}
