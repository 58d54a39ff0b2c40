package httpx

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// BaseURL parses the base URL of an HTTP API for a client: "http://" is
// assumed when raw has no scheme ("127.0.0.1:8081"), and a trailing slash
// is dropped so that paths append. what names the address in the error,
// such as "admin address".
func BaseURL(raw, what string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%s %q is not an http(s) URL", what, raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// ReadProblem returns the problem document of an error answer's body, or,
// for a body that is none (a proxy's plain-text error page), a problem of
// the status with the body as its detail.
func ReadProblem(status int, body []byte) *Problem {
	p := &Problem{}
	if json.Unmarshal(body, p) != nil || p.Title == "" {
		p = NewProblem(status, "", "", strings.TrimSpace(string(body)))
	}
	return p
}
