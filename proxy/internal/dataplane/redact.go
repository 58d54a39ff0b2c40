package dataplane

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/jsondiff"
)

// redactHeaders are the headers whose values a shadow sample never shows.
var redactHeaders = []string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization", "X-Api-Key"}

// secretWords mark a JSON member or query parameter as secret when its
// name, lowercased and without _, - and ., contains one.
var secretWords = []string{"password", "passwd", "secret", "token", "email", "apikey", "authorization", "credential", "privatekey", "cookie", "session", "cardnumber", "cvv"}

// secretText matches secrets in free text, whatever they are called: JWTs,
// bearer and basic credentials, and e-mail addresses.
var secretText = []*regexp.Regexp{
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`),
	regexp.MustCompile(`(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`),
}

// sampleRedactor hides secrets in shadow samples before they are stored,
// so that no credential or personal datum of a client reaches the admin
// API or the CLI. A nil sampleRedactor hides nothing.
type sampleRedactor struct {
	headers map[string]bool // lowercased names
	json    jsondiff.Redact
}

// newSampleRedactor builds the redactor cfg asks for, nil when disabled.
// Its paths were checked by Config.Validate.
func newSampleRedactor(cfg ShadowRedact) *sampleRedactor {
	if cfg.Disabled {
		return nil
	}
	r := &sampleRedactor{headers: map[string]bool{}, json: jsondiff.Redact{Names: secretName}}
	for _, h := range append(append([]string(nil), redactHeaders...), cfg.Headers...) {
		r.headers[strings.ToLower(h)] = true
	}
	for _, s := range cfg.Paths {
		if p, err := jsondiff.ParsePath(s); err == nil {
			r.json.Paths = append(r.json.Paths, p)
		}
	}
	return r
}

// secretName reports whether a member or parameter name looks secret.
func secretName(name string) bool {
	n := strings.Map(func(c rune) rune {
		switch c {
		case '_', '-', '.':
			return -1
		}
		return c
	}, strings.ToLower(name))
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// jsonRedact is the redaction for jsondiff, nil when none.
func (r *sampleRedactor) jsonRedact() *jsondiff.Redact {
	if r == nil {
		return nil
	}
	return &r.json
}

// header reports whether the values of header h are hidden.
func (r *sampleRedactor) header(h string) bool {
	return r != nil && r.headers[strings.ToLower(h)]
}

// text replaces the secret-shaped parts of s.
func (r *sampleRedactor) text(s string) string {
	if r == nil {
		return s
	}
	for _, re := range secretText {
		s = re.ReplaceAllString(s, jsondiff.Redacted)
	}
	return s
}

// sample hides what is left of secrets in a sample: in the URI, secret
// query parameters and secret-shaped path segments and values; and
// secret-shaped text in the request ID, which a client may choose, and in
// every difference.
func (r *sampleRedactor) sample(s *api.Sample) {
	if r == nil {
		return
	}
	s.URI, s.RequestID = r.uri(s.URI), r.text(s.RequestID)
	for i := range s.Differences {
		d := &s.Differences[i]
		d.Path, d.Legacy, d.Candidate = r.text(d.Path), r.text(d.Legacy), r.text(d.Candidate)
	}
}

// uri redacts a request URI's secret path segments and query values.
func (r *sampleRedactor) uri(u string) string {
	path, query, hasQuery := strings.Cut(u, "?")
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if plain, err := url.PathUnescape(seg); err != nil || r.text(plain) != plain {
			segs[i] = jsondiff.Redacted
		}
	}
	path = strings.Join(segs, "/")
	if !hasQuery {
		return path
	}
	params := strings.Split(query, "&")
	for i, kv := range params {
		k, v, _ := strings.Cut(kv, "=")
		name, errK := url.QueryUnescape(k)
		value, errV := url.QueryUnescape(v)
		if errK != nil || errV != nil || secretName(name) || r.text(value) != value {
			params[i] = k + "=" + jsondiff.Redacted
		}
	}
	return path + "?" + strings.Join(params, "&")
}
