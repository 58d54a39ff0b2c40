package dataplane

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/routes"
)

// Limits of the sticky key's sources.
const (
	// maxJWTBytes caps the token read from a header: a larger one gives
	// no key, so that a client cannot make the proxy decode megabytes.
	maxJWTBytes = 8 << 10
	// maxCohortKey caps the key a cohort cookie holds; a longer key is
	// replaced by its SHA-256, in hex, both in the cookie and in the hash.
	maxCohortKey = 128
	// jwtLeeway is the clock skew allowed on exp and nbf.
	jwtLeeway = 30 * time.Second
	// jwtCacheSlots is the number of tokens the claim reader keeps.
	jwtCacheSlots = 1024
	// jwtCacheFor bounds how long a kept token's key is reused without
	// checking it again.
	jwtCacheFor = 5 * time.Minute
	// cohortMACBytes is the length of the cohort cookie's HMAC-SHA256,
	// cut to 128 bits.
	cohortMACBytes = 16
)

var hmacMethods = []string{"HS256", "HS384", "HS512"}

// stickySources are the resolved sources of a module's sticky key that
// need more than a name: the JWT claim and the cohort cookie. Routes of
// one module share them.
type stickySources struct {
	jwt    *jwtClaim
	cohort *cohortCookie
}

// newStickySources resolves s, reading the JWT secret. A secret that
// cannot be read is logged, and every token then gives no key.
func (p *Plane) newStickySources(module string, s routes.Sticky) stickySources {
	var out stickySources
	if j := s.JWT; j != nil {
		jc, err := newJWTClaim(j, os.LookupEnv)
		if err != nil {
			p.log.Warn("sticky JWT secret not read; tokens give no canary key", "module", module, "error", err)
		}
		out.jwt = jc
	}
	if c := s.CohortCookie; c != nil {
		out.cohort = newCohortCookie(c.Name, int(c.MaxAge.D()/time.Second), c.Secure, p.cohort)
	}
	return out
}

// jwtClaim reads the canary key from a claim of a JSON Web Token in a
// request header.
type jwtClaim struct {
	header string
	claim  string
	parser *jwt.Parser
	// secret checks HMAC signatures; nil checks none.
	secret []byte
	// broken is set when a secret was configured and not read: every
	// token gives no key then, rather than being trusted unchecked.
	broken bool
	// cache keeps the tokens that gave a key, one per slot, the newest
	// winning: a direct-mapped cache needs no lock and no eviction.
	cache [jwtCacheSlots]atomic.Pointer[tokenEntry]
}

// newJWTClaim builds the reader of j, whose defaults Compile applied. It
// returns a reader that gives no key, and the error, when j's secret
// cannot be read.
func newJWTClaim(j *routes.StickyJWT, lookupEnv func(string) (string, bool)) (*jwtClaim, error) {
	jc := &jwtClaim{header: j.Header, claim: j.Claim}
	opts := []jwt.ParserOption{jwt.WithJSONNumber(), jwt.WithLeeway(jwtLeeway)}
	var err error
	switch {
	case j.SecretFile != "":
		var b []byte
		if b, err = os.ReadFile(j.SecretFile); err == nil {
			jc.secret = bytes.TrimSpace(b)
		}
	case j.SecretEnv != "":
		if v, ok := lookupEnv(j.SecretEnv); ok {
			jc.secret = []byte(strings.TrimSpace(v))
		} else {
			err = fmt.Errorf("environment variable %s is not set", j.SecretEnv)
		}
	}
	if err == nil && (j.SecretFile != "" || j.SecretEnv != "") && len(jc.secret) == 0 {
		err = errors.New("the JWT secret is empty")
	}
	if err != nil {
		jc.broken, jc.secret = true, nil
		return jc, fmt.Errorf("sticky jwt secret: %w", err)
	}
	if jc.secret != nil {
		opts = append(opts, jwt.WithValidMethods(hmacMethods))
	}
	jc.parser = jwt.NewParser(opts...)
	return jc, nil
}

// value returns the claim of the token in h, a header's value, or nil when
// there is no usable token: none, too large, malformed, signed with alg
// none, expired or not yet valid, or with a signature that does not hold
// when a secret is set. It never panics on what a client sends.
func (j *jwtClaim) value(h []byte) []byte {
	if j.broken || len(h) == 0 || len(h) > maxJWTBytes {
		return nil
	}
	// A token is reused by its user on every request: its key is kept,
	// by the token's exact bytes, signature included, so that a token
	// is parsed and checked once, not per request.
	tok := bytes.TrimSpace(h)
	if len(tok) > 7 && fold(tok[:7], "bearer ") {
		tok = bytes.TrimSpace(tok[7:])
	}
	if bytes.Count(tok, []byte{'.'}) != 2 {
		return nil
	}
	now := time.Now()
	slot := &j.cache[tokenSlot(tok)]
	if e := slot.Load(); e != nil && e.tok == string(tok) && now.Before(e.until) {
		return e.key
	}
	key, until := j.parse(tok, now)
	if key != nil {
		slot.Store(&tokenEntry{tok: string(tok), key: key, until: until})
	}
	return key
}

// parse reads and checks tok; it returns the claim and until when the
// answer may be reused: the token's expiry, at most jwtCacheFor from now.
func (j *jwtClaim) parse(tok []byte, now time.Time) (key []byte, until time.Time) {
	claims := jwt.MapClaims{}
	if j.secret != nil {
		if _, err := j.parser.ParseWithClaims(string(tok), claims, j.keyfunc); err != nil {
			return nil, now
		}
	} else {
		t, _, err := j.parser.ParseUnverified(string(tok), claims)
		if err != nil || t.Method == nil || t.Method == jwt.SigningMethodNone || t.Method.Alg() == "none" {
			return nil, now
		}
		if err := jwt.NewValidator(jwt.WithLeeway(jwtLeeway)).Validate(claims); err != nil {
			return nil, now
		}
	}
	until = now.Add(jwtCacheFor)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil && exp.Add(jwtLeeway).Before(until) {
		until = exp.Add(jwtLeeway)
	}
	switch v := claims[j.claim].(type) {
	case string:
		key = []byte(v)
	case json.Number:
		key = []byte(v.String())
	}
	if len(key) == 0 {
		return nil, until
	}
	return key, until
}

// tokenEntry is a token that gave a key, and until when it may be reused.
type tokenEntry struct {
	tok   string
	key   []byte
	until time.Time
}

// tokenSlot hashes a token to its slot in the cache (FNV-1a).
func tokenSlot(tok []byte) int {
	h := uint32(2166136261)
	for _, c := range tok {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % jwtCacheSlots)
}

func (j *jwtClaim) keyfunc(*jwt.Token) (any, error) { return j.secret, nil }

// cohortSigner signs and checks cohort cookies with the proxy's cohort
// secret. Its HMACs are pooled: one per request would allocate.
type cohortSigner struct {
	pool sync.Pool
}

// newCohortSigner signs with secret, or with a random one of this process
// when secret is empty: cookies then hold only until the process ends, and
// only on it.
func newCohortSigner(secret []byte) *cohortSigner {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	secret = bytes.Clone(secret)
	s := &cohortSigner{}
	s.pool.New = func() any { return hmac.New(sha256.New, secret) }
	return s
}

// mac appends the MAC of key to dst; prefix is the cookie's name and a
// zero byte, so that a cookie is valid under its own name only.
func (s *cohortSigner) mac(dst, prefix, key []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	_, _ = h.Write(prefix)
	_, _ = h.Write(key)
	var sum [sha256.Size]byte
	dst = append(dst, h.Sum(sum[:0])[:cohortMACBytes]...)
	s.pool.Put(h)
	return dst
}

// cohortCookie is a module's signed cohort cookie.
type cohortCookie struct {
	name   string
	maxAge int
	secure *bool
	signer *cohortSigner
	// prefix is what the MAC covers before the key: the name and a zero
	// byte.
	prefix []byte
}

func newCohortCookie(name string, maxAge int, secure *bool, signer *cohortSigner) *cohortCookie {
	return &cohortCookie{name: name, maxAge: maxAge, secure: secure, signer: signer, prefix: append([]byte(name), 0)}
}

var b64 = base64.RawURLEncoding

// read appends to dst the key of the request's cohort cookie, and reports
// whether there is one whose MAC holds. A missing, malformed, forged or
// altered cookie reads as none.
func (c *cohortCookie) read(dst []byte, req *fasthttp.RequestHeader) ([]byte, bool) {
	v := req.Cookie(c.name)
	dot := bytes.IndexByte(v, '.')
	if dot <= 0 || b64.DecodedLen(dot) > maxCohortKey || b64.DecodedLen(len(v)-dot-1) != cohortMACBytes {
		return dst, false
	}
	var raw [maxCohortKey + cohortMACBytes]byte
	kn, err := b64.Decode(raw[:], v[:dot])
	if err != nil {
		return dst, false
	}
	mn, err := b64.Decode(raw[kn:], v[dot+1:])
	if err != nil || mn != cohortMACBytes {
		return dst, false
	}
	var want [cohortMACBytes]byte
	if !hmac.Equal(c.signer.mac(want[:0], c.prefix, raw[:kn]), raw[kn:kn+mn]) {
		return dst, false
	}
	return append(dst, raw[:kn]...), true
}

// set adds the cookie that holds key to the answer.
func (c *cohortCookie) set(st *reqState, key []byte) {
	var mac [cohortMACBytes]byte
	v := b64.AppendEncode(st.scratch[:0], key)
	v = append(v, '.')
	v = b64.AppendEncode(v, c.signer.mac(mac[:0], c.prefix, key))
	st.scratch = v[:0]
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(c.name)
	ck.SetValueBytes(v)
	ck.SetPath("/")
	ck.SetMaxAge(c.maxAge)
	ck.SetHTTPOnly(true)
	ck.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	secure := st.ctx.IsTLS() || fold(st.ctx.Request.Header.PeekBytes(hdrXFProto), "https")
	if c.secure != nil {
		secure = *c.secure
	}
	ck.SetSecure(secure)
	st.ctx.Response.Header.SetCookie(ck)
}

// stickyKey returns the canary key, by the order routes.Sticky documents:
// the valid cohort cookie, the header, the JWT claim, the cookie, the
// client's address. It is worked out once per request; a request without
// a valid cohort cookie is marked to get one with the key.
func (rt *routeRT) stickyKey(st *reqState) []byte {
	if st.keyDone {
		return st.key
	}
	st.keyDone = true
	h := &st.ctx.Request.Header
	if c := rt.sticky.cohort; c != nil {
		var ok bool
		if st.key, ok = c.read(st.key[:0], h); ok {
			return st.key
		}
		st.issueCohort = true
	}
	st.key = rt.identity(st.key[:0], st)
	if rt.sticky.cohort != nil && len(st.key) > maxCohortKey {
		sum := sha256.Sum256(st.key)
		st.key = hex.AppendEncode(st.key[:0], sum[:])
	}
	return st.key
}

// identity appends the key of the sources after the cohort cookie.
func (rt *routeRT) identity(dst []byte, st *reqState) []byte {
	h := &st.ctx.Request.Header
	if rt.Sticky.Header != "" {
		if v := h.Peek(rt.Sticky.Header); len(v) > 0 {
			return append(dst, v...)
		}
	}
	if j := rt.sticky.jwt; j != nil {
		if v := j.value(h.Peek(j.header)); len(v) > 0 {
			return append(dst, v...)
		}
	}
	if rt.Sticky.Cookie != "" {
		if v := h.Cookie(rt.Sticky.Cookie); len(v) > 0 {
			return append(dst, v...)
		}
	}
	return st.client.AppendTo(dst)
}
