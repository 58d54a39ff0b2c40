package httpx

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// textProblem says why s cannot be stored as text, or returns "" when it
// can. Postgres refuses a NUL character in text (SQLSTATE 22021) and SQLite
// cuts a string at it (so that a LIKE pattern "%a\x00b%" matches every row),
// and neither takes invalid UTF-8 faithfully; every text input is checked
// here at the edge, so that the databases never see either.
func textProblem(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain a NUL character"
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	return ""
}

// CleanPath refuses a request whose path holds a NUL character or invalid
// UTF-8 (such as /stock/%00 or /stock/%ff) with a 400 problem, so that no
// path parameter carries either to a handler.
func CleanPath() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if msg := textProblem(c.Request().URL.Path); msg != "" {
				return BadRequest("the path %s", msg)
			}
			return next(c)
		}
	}
}

// nulEscape is how a NUL character appears in a JSON string: the JSON
// grammar has no other spelling for it (a raw control character is a
// syntax error, and the "u" of an escape is lower case).
var nulEscape = []byte(`\u0000`)

// nulFields returns the field of every string in the JSON document body
// that holds a NUL character, as a path such as "lines[1].sku". body must
// be valid JSON. Only bodies that hold the escape are walked.
func nulFields(body []byte) []FieldError {
	if !bytes.Contains(body, nulEscape) {
		return nil
	}
	// frame is one open object or array: its path, and for an object
	// whether the next token is a key, for an array the next index.
	type frame struct {
		path      string
		object    bool
		expectKey bool
		key       string
		index     int
	}
	var (
		stack []*frame
		errs  []FieldError
	)
	at := func(f *frame) string {
		switch {
		case f == nil:
			return ""
		case f.object && f.path == "":
			return f.key
		case f.object:
			return f.path + "." + f.key
		default:
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
	}
	next := func(f *frame) {
		if f == nil {
			return
		}
		if f.object {
			f.expectKey = true
		} else {
			f.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return errs
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if key, ok := tok.(string); ok {
				top.key, top.expectKey = key, false
				if strings.IndexByte(key, 0) >= 0 {
					errs = append(errs, FieldError{Field: at(top), Message: "the field name must not contain a NUL character"})
				}
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{path: at(top), object: true, expectKey: true})
			case '[':
				stack = append(stack, &frame{path: at(top)})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					next(stack[len(stack)-1])
				}
			}
		case string:
			if strings.IndexByte(t, 0) >= 0 {
				errs = append(errs, FieldError{Field: at(top), Message: "must not contain a NUL character"})
			}
			next(top)
		default:
			next(top)
		}
	}
}
