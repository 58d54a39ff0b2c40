// Package discover derives path templates from observed request paths, as
// API discovery tools do for an app that ships no spec: segments that look
// like values (integers, UUIDs, hashes, dates, slugs) become {param}s as a
// request is counted (AppendTemplate, cheap and bounded, for the proxy's
// hot path), and positions whose distinct literal values exceed a threshold
// become {param}s when the counted templates are merged (Merge). Fragment
// groups the result into modules of a routes file.
package discover

// The bounds of a template: a path deeper than MaxSegments ends in
// "/{rest}", and a template never grows past MaxTemplateLen bytes, so that
// no request path, however long or random, costs more than that to hold.
const (
	MaxSegments    = 12
	MaxTemplateLen = 256
	// MaxLiteral is the longest segment kept as a literal: a longer one is
	// a {value}.
	MaxLiteral = 48
)

// The parameter names AppendTemplate writes, by the shape of the segment.
const (
	ParamID    = "id"    // an integer
	ParamUUID  = "uuid"  // 8-4-4-4-12 hex digits
	ParamHash  = "hash"  // 16 or more hex digits with at least one digit
	ParamDate  = "date"  // YYYY-MM-DD
	ParamSlug  = "slug"  // three or more lower-case words joined by '-'
	ParamToken = "token" // 20 or more letters and digits with a digit
	ParamValue = "value" // a segment longer than MaxLiteral
	ParamRest  = "rest"  // the segments beyond MaxSegments
)

// AppendTemplate appends the template of path, a normalized absolute path,
// to dst: each segment that looks like a value is replaced by its
// {param}, the rest are kept. It allocates nothing when dst has room for
// MaxTemplateLen bytes.
func AppendTemplate(dst, path []byte) []byte {
	start := len(dst)
	if len(path) == 0 || path[0] != '/' {
		return append(dst, '/')
	}
	rest := path[1:]
	for n := 0; ; n++ {
		if n == MaxSegments {
			dst = appendParam(append(dst, '/'), ParamRest)
			break
		}
		i := indexSlash(rest)
		seg := rest
		if i >= 0 {
			seg = rest[:i]
		}
		dst = append(dst, '/')
		if name := Classify(seg); name != "" {
			dst = appendParam(dst, name)
		} else {
			dst = append(dst, seg...)
		}
		if len(dst)-start > MaxTemplateLen {
			dst = appendParam(append(dst[:start+lastSlash(dst[start:MaxTemplateLen+start])], '/'), ParamRest)
			break
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	return dst
}

func appendParam(dst []byte, name string) []byte {
	dst = append(dst, '{')
	dst = append(dst, name...)
	return append(dst, '}')
}

func indexSlash(b []byte) int {
	for i, c := range b {
		if c == '/' {
			return i
		}
	}
	return -1
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return 0
}

// Classify returns the parameter name of a segment that looks like a
// value, or "" for one that looks like a literal part of the API.
func Classify(seg []byte) string {
	n := len(seg)
	switch {
	case n == 0:
		return ""
	case n > MaxLiteral:
		return ParamValue
	case isDigits(seg):
		return ParamID
	case isUUID(seg):
		return ParamUUID
	case isDate(seg):
		return ParamDate
	case n >= 16 && isHexWithDigit(seg):
		return ParamHash
	case isSlug(seg):
		return ParamSlug
	case n >= 20 && isToken(seg):
		return ParamToken
	}
	return ""
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isHexWithDigit(b []byte) bool {
	digit := false
	for _, c := range b {
		if !isHexDigit(c) {
			return false
		}
		digit = digit || c <= '9'
	}
	return digit
}

func isUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHexDigit(c) {
				return false
			}
		}
	}
	return true
}

func isDate(b []byte) bool {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return false
	}
	return isDigits(b[:4]) && isDigits(b[5:7]) && isDigits(b[8:])
}

// isSlug reports three or more lower-case words joined by single hyphens,
// as in "how-to-brew": two-word segments such as "add-item" are as often
// part of an API as values, and are left to Merge's cardinality.
func isSlug(b []byte) bool {
	hyphens, prev := 0, byte('-')
	for _, c := range b {
		switch {
		case c == '-':
			if prev == '-' {
				return false
			}
			hyphens++
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		default:
			return false
		}
		prev = c
	}
	return hyphens >= 2 && prev != '-'
}

func isToken(b []byte) bool {
	digit := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return digit
}
