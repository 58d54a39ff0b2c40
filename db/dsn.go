// Package db opens the databases Strangler works with and runs their
// golang-migrate migrations. It knows two engines, SQLite (the embedded
// default, through github.com/mattn/go-sqlite3 for both gorm and migrate, so
// that exactly one engine registers itself) and PostgreSQL (through pgx v5,
// again for both). Nothing in it is specific to the reference shop: any gorm
// application can use it.
package db

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// Dialect names a database engine.
type Dialect string

// The dialects Strangler supports.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrBadDSN is returned for a DSN that names no supported engine.
var ErrBadDSN = errors.New("unsupported database DSN")

// DSN is a parsed data source name.
type DSN struct {
	// Dialect is the engine.
	Dialect Dialect
	// Path is the SQLite file path; empty for Postgres.
	Path string
	// URL is the Postgres connection URL; empty for SQLite.
	URL string
	// Schema is the Postgres schema from the URL's search_path parameter,
	// if one was given. Open and the migrations create it when missing, so a
	// service can own a schema inside a shared database.
	Schema string
}

// ParseDSN parses "sqlite:PATH" (also "sqlite://PATH") or a
// "postgres://" / "postgresql://" URL.
func ParseDSN(s string) (DSN, error) {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			return DSN{}, fmt.Errorf("%w: %q: SQLite DSNs take no parameters, Strangler sets them", ErrBadDSN, Redact(s))
		}
		if p == "" {
			return DSN{}, fmt.Errorf("%w: %q: a file path must follow the sqlite: prefix", ErrBadDSN, Redact(s))
		}
		return DSN{Dialect: SQLite, Path: filepath.Clean(p)}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			return DSN{}, fmt.Errorf("%w: %q: %v", ErrBadDSN, Redact(s), redactURLError(err))
		}
		if u.Host == "" {
			return DSN{}, fmt.Errorf("%w: %q: missing host", ErrBadDSN, Redact(s))
		}
		d := DSN{Dialect: Postgres, URL: s}
		if sp := u.Query().Get("search_path"); sp != "" {
			if strings.ContainsAny(sp, ", \"") {
				return DSN{}, fmt.Errorf("%w: %q: search_path must name a single schema", ErrBadDSN, Redact(s))
			}
			d.Schema = sp
		}
		return d, nil
	default:
		return DSN{}, fmt.Errorf("%w: %q: want sqlite:PATH or postgres://URL", ErrBadDSN, Redact(s))
	}
}

// redactURLError drops the URL that net/url puts in its errors, since it may
// carry a password.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Redact returns s with any password replaced by "xxxxx", so that a DSN can be
// logged or printed: the password of a URL's user info, its password and
// sslpassword parameters, and the password and sslpassword of a libpq
// keyword/value DSN ("host=db password='s3 cret'"), which ParseDSN refuses
// but an error message would otherwise repeat.
func Redact(s string) string {
	if strings.HasPrefix(s, "sqlite:") {
		return s
	}
	if !strings.Contains(s, "://") {
		return redactKeywords(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		// An unparsable URL may still hold a password between "//" and "@".
		if i, j := strings.Index(s, "://"), strings.LastIndex(s, "@"); i >= 0 && j > i {
			s = s[:i+3] + "xxxxx" + s[j:]
		}
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s = s[:i+1] + redactQuery(s[i+1:])
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	u.RawQuery = redactQuery(u.RawQuery)
	return u.String()
}

// secretParam reports whether a connection parameter holds a secret.
func secretParam(name string) bool {
	return strings.EqualFold(name, "password") || strings.EqualFold(name, "sslpassword")
}

// redactQuery replaces the values of the secret parameters of a raw query
// string. It works on the raw text, part by part, because url.ParseQuery
// drops a part it cannot unescape, which would leave a malformed password
// in place.
func redactQuery(raw string) string {
	parts := strings.Split(raw, "&")
	for i, part := range parts {
		name, _, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if secretParam(name) {
			parts[i] = part[:strings.IndexByte(part, '=')] + "=xxxxx"
		}
	}
	return strings.Join(parts, "&")
}

// keywordSecret matches a secret pair of a libpq keyword/value connection
// string: "key = value" pairs separated by white space, where a value may be
// single-quoted with backslash escapes (an unterminated quote runs to the
// end).
var keywordSecret = regexp.MustCompile(`(?i)(^|\s)((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.?)*(?:'|$)|\S*)`)

// redactKeywords replaces the secret values of a libpq keyword/value
// connection string.
func redactKeywords(s string) string {
	return keywordSecret.ReplaceAllString(s, "${1}${2}xxxxx")
}

// String returns the DSN in its redacted form.
func (d DSN) String() string {
	if d.Dialect == SQLite {
		return "sqlite:" + d.Path
	}
	return Redact(d.URL)
}
