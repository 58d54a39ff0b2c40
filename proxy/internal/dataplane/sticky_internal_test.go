package dataplane

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// signed returns a token with claims, signed with alg under key.
func signed(t *testing.T, alg jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(alg, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWTClaim reads the sticky key from tokens, good and bad, with and
// without a secret: only a well-formed, current token that is not alg
// none, and whose signature holds when a secret is set, gives a key.
func TestJWTClaim(t *testing.T) {
	secret := []byte("the-hmac-secret-of-the-app")
	now := time.Now()
	good := jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}
	hs := signed(t, jwt.SigningMethodHS256, secret, good)
	none := signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)
	// A none token with a signature part of its own, for parsers that only
	// look at the dots.
	noneSigned := none + "c2ln"
	parts := strings.Split(hs, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999}`)) + "." + parts[2]
	huge := signed(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "pad": strings.Repeat("x", 9000)})
	var junk [512]byte
	_, _ = rand.Read(junk[:])
	for _, tc := range []struct {
		name       string
		header     string
		unverified string // the key without a secret; "" for none
		verified   string // the key with the secret
	}{
		{"bearer", "Bearer " + hs, "alice", "alice"},
		{"lower-case bearer", "bearer " + hs, "alice", "alice"},
		{"bare token", hs, "alice", "alice"},
		{"other key", "Bearer " + signed(t, jwt.SigningMethodHS256, []byte("not the secret"), good), "alice", ""},
		{"tampered payload", "Bearer " + tampered, "mallory", ""},
		{"numeric claim", "Bearer " + signed(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{"sub": 42}), "42", "42"},
		{"claim of another type", "Bearer " + signed(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": []string{"a"}}), "", ""},
		{"no claim", "Bearer " + signed(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"name": "alice"}), "", ""},
		{"expired", "Bearer " + signed(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Hour).Unix()}), "", ""},
		{"not yet valid", "Bearer " + signed(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "nbf": now.Add(time.Hour).Unix()}), "", ""},
		{"alg none", "Bearer " + none, "", ""},
		{"alg none with a signature", "Bearer " + noneSigned, "", ""},
		{"huge", "Bearer " + huge, "", ""},
		{"empty", "", "", ""},
		{"bearer only", "Bearer ", "", ""},
		{"one part", "Bearer abc", "", ""},
		{"four parts", "Bearer " + hs + ".x", "", ""},
		{"bad base64", "Bearer !!!.???.***", "", ""},
		{"payload not JSON", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + parts[2], "", ""},
		{"header not JSON", "Bearer e30K." + parts[1] + "." + parts[2], "", ""},
		{"dots only", "..", "", ""},
		{"random bytes", string(junk[:100]) + "." + string(junk[100:300]) + "." + string(junk[300:]), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(plain.value([]byte(tc.header))); got != tc.unverified {
				t.Errorf("without a secret: key %q, want %q", got, tc.unverified)
			}
			env := func(string) (string, bool) { return string(secret), true }
			checked, err := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization", SecretEnv: "JWT_SECRET"}, env)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(checked.value([]byte(tc.header))); got != tc.verified {
				t.Errorf("with the secret: key %q, want %q", got, tc.verified)
			}
		})
	}
}

// TestJWTSecretSources reads the secret from a file or the environment;
// one that is missing or empty makes every token give no key, rather than
// being taken unchecked.
func TestJWTSecretSources(t *testing.T) {
	secret := "file-secret-0123456789"
	dir := t.TempDir()
	file := filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := []byte("Bearer " + signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice"}))
	noEnv := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		name    string
		j       routes.StickyJWT
		wantErr bool
		want    string
	}{
		{"file", routes.StickyJWT{SecretFile: file}, false, "alice"},
		{"missing file", routes.StickyJWT{SecretFile: filepath.Join(dir, "nope")}, true, ""},
		{"empty file", routes.StickyJWT{SecretFile: empty}, true, ""},
		{"unset variable", routes.StickyJWT{SecretEnv: "NOPE"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.j.Claim, tc.j.Header = "sub", "Authorization"
			j, err := newJWTClaim(&tc.j, noEnv)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if got := string(j.value(tok)); got != tc.want {
				t.Fatalf("key %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCohortCookieRoundTrip: a cookie set for a key reads back as that
// key under the same secret and cookie name, and as none under another
// secret or name.
func TestCohortCookieRoundTrip(t *testing.T) {
	signer := newCohortSigner([]byte("secret-one-0123456789"))
	c := newCohortCookie("cohort", 60, nil, signer)
	for _, key := range []string{"alice", "10.0.0.1", strings.Repeat("k", maxCohortKey), "bytes \x00\xff;=,"} {
		var ctx fasthttp.RequestCtx
		st := &reqState{ctx: &ctx}
		c.set(st, []byte(key))
		ck := fasthttp.AcquireCookie()
		ck.SetKey("cohort")
		if !ctx.Response.Header.Cookie(ck) {
			t.Fatalf("%q: no cookie set", key)
		}
		value := string(ck.Value())
		fasthttp.ReleaseCookie(ck)
		for _, tc := range []struct {
			name   string
			reader *cohortCookie
			ok     bool
		}{
			{"same", c, true},
			{"other secret", newCohortCookie("cohort", 60, nil, newCohortSigner([]byte("secret-two-0123456789"))), false},
			{"other name", newCohortCookie("cohort2", 60, nil, signer), false},
		} {
			var req fasthttp.RequestHeader
			req.SetCookie(tc.reader.name, value)
			got, ok := tc.reader.read(nil, &req)
			if ok != tc.ok || ok && string(got) != key {
				t.Errorf("%q, %s: read %q, %v", key, tc.name, got, ok)
			}
		}
	}
}

// TestJWTClaimCache: a token that gave a key is kept by its exact bytes,
// at most until its expiry, and a token that differs in one byte is read
// afresh.
func TestJWTClaimCache(t *testing.T) {
	secret := []byte("the-hmac-secret-of-the-app")
	exp := time.Now().Add(10 * time.Second).Truncate(time.Second)
	tok := signed(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": exp.Unix()})
	j, err := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization", SecretEnv: "S"}, func(string) (string, bool) { return string(secret), true })
	if err != nil {
		t.Fatal(err)
	}
	if got := string(j.value([]byte("Bearer " + tok))); got != "alice" {
		t.Fatalf("key %q", got)
	}
	e := j.cache[tokenSlot([]byte(tok))].Load()
	if e == nil || e.tok != tok || string(e.key) != "alice" {
		t.Fatalf("the token was not kept: %+v", e)
	}
	if want := exp.Add(jwtLeeway); !e.until.Equal(want) {
		t.Fatalf("kept until %v, want the expiry plus leeway, %v", e.until, want)
	}
	// The same slot, other bytes: a forged signature is not taken from
	// the cache.
	forged := tok[:len(tok)-2] + "AA"
	j.cache[tokenSlot([]byte(forged))].Store(&tokenEntry{tok: tok, key: []byte("alice"), until: exp})
	if got := j.value([]byte("Bearer " + forged)); got != nil {
		t.Fatalf("a forged token gave key %q", got)
	}
}

// FuzzJWTClaim feeds the token reader arbitrary header values: it must not
// panic, and without the secret's signature it gives no key.
func FuzzJWTClaim(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln")
	f.Add("..")
	f.Add("Bearer e30.e30.")
	f.Fuzz(func(t *testing.T, h string) {
		plain, _ := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization"}, nil)
		_ = plain.value([]byte(h))
		env := func(string) (string, bool) { return "fuzz-secret-0123456789", true }
		checked, _ := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization", SecretEnv: "S"}, env)
		if v := checked.value([]byte(h)); v != nil {
			t.Fatalf("an unsigned value gave key %q", v)
		}
	})
}

// BenchmarkStickyKey measures the sticky key per request by its source: a
// valid cohort cookie (one HMAC), and a bearer token read unchecked and
// checked with HS256, the costly ones.
func BenchmarkStickyKey(b *testing.B) {
	secret := []byte("the-hmac-secret-of-the-app")
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	if err != nil {
		b.Fatal(err)
	}
	signer := newCohortSigner([]byte("cohort-secret-0123456789"))
	cohort := newCohortCookie("cohort", 60, nil, signer)
	var setCtx fasthttp.RequestCtx
	cohort.set(&reqState{ctx: &setCtx}, []byte("user-12345"))
	ck := fasthttp.AcquireCookie()
	ck.SetKey("cohort")
	setCtx.Response.Header.Cookie(ck)
	plain, _ := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization"}, nil)
	checked, _ := newJWTClaim(&routes.StickyJWT{Claim: "sub", Header: "Authorization", SecretEnv: "S"}, func(string) (string, bool) { return string(secret), true })
	for _, bc := range []struct {
		name string
		rt   *routeRT
		set  func(h *fasthttp.RequestHeader)
	}{
		{"header", &routeRT{Route: &routes.Route{Sticky: routes.Sticky{Header: "X-User-Id"}}}, func(h *fasthttp.RequestHeader) { h.Set("X-User-Id", "user-12345") }},
		{"cohort-cookie", &routeRT{Route: &routes.Route{}, sticky: stickySources{cohort: cohort}}, func(h *fasthttp.RequestHeader) { h.SetCookie("cohort", string(ck.Value())) }},
		{"jwt-unchecked", &routeRT{Route: &routes.Route{}, sticky: stickySources{jwt: plain}}, func(h *fasthttp.RequestHeader) { h.Set("Authorization", "Bearer "+tok) }},
		{"jwt-hs256", &routeRT{Route: &routes.Route{}, sticky: stickySources{jwt: checked}}, func(h *fasthttp.RequestHeader) { h.Set("Authorization", "Bearer "+tok) }},
	} {
		if j := bc.rt.sticky.jwt; j != nil {
			// A token's first request, which parses it.
			b.Run(bc.name+"-first", func(b *testing.B) {
				h := []byte("Bearer " + tok)
				slot := &j.cache[tokenSlot([]byte(tok))]
				b.ReportAllocs()
				for b.Loop() {
					slot.Store(nil)
					j.value(h)
				}
			})
		}
		b.Run(bc.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			bc.set(&ctx.Request.Header)
			st := &reqState{ctx: &ctx}
			want := bc.rt.stickyKey(st)
			if string(want) != "user-12345" && string(want) != "alice" {
				b.Fatalf("key %q", want)
			}
			b.ReportAllocs()
			for b.Loop() {
				st.keyDone = false
				bc.rt.stickyKey(st)
			}
		})
	}
}

// TestCohortCookieSecure: the cookie is Secure when the request came over
// HTTPS as the proxy sees it (X-Forwarded-Proto after sanitizing), unless
// the table says otherwise.
func TestCohortCookieSecure(t *testing.T) {
	yes, no := true, false
	signer := newCohortSigner([]byte("secret-one-0123456789"))
	for _, tc := range []struct {
		name   string
		proto  string
		secure *bool
		want   bool
	}{
		{"auto over http", "http", nil, false},
		{"auto over https", "https", nil, true},
		{"on over http", "http", &yes, true},
		{"off over https", "https", &no, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetCanonical(hdrXFProto, []byte(tc.proto))
			newCohortCookie("cohort", 60, tc.secure, signer).set(&reqState{ctx: &ctx}, []byte("k"))
			ck := fasthttp.AcquireCookie()
			defer fasthttp.ReleaseCookie(ck)
			ck.SetKey("cohort")
			if !ctx.Response.Header.Cookie(ck) {
				t.Fatal("no cookie set")
			}
			if ck.Secure() != tc.want || !ck.HTTPOnly() || ck.SameSite() != fasthttp.CookieSameSiteLaxMode || ck.MaxAge() != 60 || string(ck.Path()) != "/" {
				t.Fatalf("cookie %s", ck.String())
			}
		})
	}
}
