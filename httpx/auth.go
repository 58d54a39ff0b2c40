package httpx

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// BearerAuth returns a middleware that lets a request through only with
// "Authorization: Bearer <token>" (the scheme in any case), the token
// compared in constant time; others get a 401 problem with a
// WWW-Authenticate challenge for realm. token is called for each request,
// so that a token file written after start counts. When it returns "",
// every request gets 403: an endpoint whose token is not configured is
// closed, never open.
func BearerAuth(realm string, token func() string) echo.MiddlewareFunc {
	challenge := `Bearer realm="` + realm + `"`
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			want := token()
			if want == "" {
				return NewProblem(http.StatusForbidden, "no-token-configured", "No token configured",
					"this endpoint needs a bearer token, and none is configured")
			}
			auth := c.Request().Header.Get("Authorization")
			got, ok := bearerToken(auth)
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				c.Response().Header().Set("WWW-Authenticate", challenge)
				if auth == "" {
					return Unauthorized("this endpoint needs an Authorization: Bearer token")
				}
				return Unauthorized("the bearer token is not valid")
			}
			return next(c)
		}
	}
}

// bearerToken returns the token of a Bearer Authorization header. The
// scheme is case-insensitive and may be followed by more than one space
// (RFC 7235, section 2.1), so "bearer <token>" counts as well.
func bearerToken(auth string) (string, bool) {
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}
