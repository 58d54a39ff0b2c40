package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// DecodeJSON reads the request body into v and turns every way it can be
// wrong into a problem with a precise message: a body over the limit (413), a
// content type that is not JSON (415), malformed JSON, invalid UTF-8, a value
// of the wrong type, a missing body or trailing data (400), and a string
// holding a NUL character (422, naming each such field). Unknown fields are
// accepted, so that clients may send more than this version reads.
func DecodeJSON(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
				"the body must be application/json, not "+strconv.Quote(ct))
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	// encoding/json would put U+FFFD in place of invalid UTF-8 and store a
	// string the client never sent; JSON text is UTF-8 (RFC 8259).
	if !utf8.Valid(body) {
		return BadRequest("the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return BadRequest("the body must hold a single JSON value")
	}
	if errs := nulFields(body); len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		problem   *Problem
		unmarshal *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &problem):
		return problem
	case errors.As(err, &tooLarge):
		return TooLarge(tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return BadRequest("the body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("malformed JSON: the body ends early")
	case errors.As(err, &syntax):
		return BadRequest("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return BadRequest("the body must be %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return BadRequest("field %q must be %s, not %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &unmarshal):
		// A programming error, not the client's.
		return err
	default:
		return BadRequest("malformed JSON: %s", err.Error())
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return k
	}
}

// BodyLimit refuses bodies over limit bytes with a 413 problem: at once when
// Content-Length says so, and otherwise when reading passes the limit.
func BodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > limit {
				return TooLarge(limit)
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
			}
			return next(c)
		}
	}
}
