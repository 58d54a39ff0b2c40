// Package httpx holds the HTTP plumbing that Strangler's echo servers share:
// RFC 9457 problem documents, strict JSON decoding, request IDs, structured
// access logs, Prometheus metrics, health endpoints and graceful serving.
package httpx

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// ProblemTypeBase prefixes every problem type URI; the fragment names the
// section of docs/problems.md that explains the problem.
const ProblemTypeBase = "https://github.com/stranglerkit/strangler/blob/main/docs/problems.md#"

// ContentTypeProblem is the media type of problem documents.
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem document. It is also an error, so handlers
// can return it and the error handler writes it as is.
type Problem struct {
	// Type is a URI naming the kind of problem.
	Type string `json:"type"`
	// Title is a short summary of the kind of problem.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Instance is the request path the problem occurred on.
	Instance string `json:"instance,omitempty"`
	// Errors lists the invalid fields of a validation problem.
	Errors []FieldError `json:"errors,omitempty"`
	// RequestID correlates the problem with the access log.
	RequestID string `json:"request_id,omitempty"`
}

// FieldError is one invalid input field.
type FieldError struct {
	// Field is the JSON path of the field, such as "lines[0].quantity".
	Field string `json:"field"`
	// Message says what is wrong with it.
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return strconv.Itoa(p.Status) + " " + p.Title + ": " + p.Detail
	}
	return strconv.Itoa(p.Status) + " " + p.Title
}

// NewProblem returns a problem of the given kind. slug names the kind within
// docs/problems.md; an empty slug gives "about:blank", whose title is the
// status text.
func NewProblem(status int, slug, title, detail string) *Problem {
	typ := "about:blank"
	if slug != "" {
		typ = ProblemTypeBase + slug
	}
	if title == "" {
		title = http.StatusText(status)
	}
	return &Problem{Type: typ, Title: title, Status: status, Detail: detail}
}

// BadRequest is a 400 for input that cannot be read: malformed JSON, a value
// of the wrong type, a bad query parameter.
func BadRequest(format string, args ...any) *Problem {
	return NewProblem(http.StatusBadRequest, "bad-request", "Bad request", fmt.Sprintf(format, args...))
}

// NotFound is a 404 for a resource that does not exist.
func NotFound(format string, args ...any) *Problem {
	return NewProblem(http.StatusNotFound, "not-found", "Not found", fmt.Sprintf(format, args...))
}

// Conflict is a 409 for a request that clashes with the resource's state.
// slug names the kind of conflict, such as "out-of-stock".
func Conflict(slug, title, format string, args ...any) *Problem {
	return NewProblem(http.StatusConflict, slug, title, fmt.Sprintf(format, args...))
}

// Invalid is a 422 listing every invalid field at once.
func Invalid(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, "validation", "Invalid input", "")
	p.Errors = errs
	if len(errs) == 1 {
		p.Detail = errs[0].Field + ": " + errs[0].Message
	} else {
		p.Detail = strconv.Itoa(len(errs)) + " fields are invalid"
	}
	return p
}

// Unprocessable is a 422 for well-formed input that refers to something that
// does not exist or cannot be used, such as an unknown customer in an order.
func Unprocessable(slug, title, format string, args ...any) *Problem {
	return NewProblem(http.StatusUnprocessableEntity, slug, title, fmt.Sprintf(format, args...))
}

// TooLarge is a 413 for a body over the limit.
func TooLarge(limit int64) *Problem {
	return NewProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
		fmt.Sprintf("the body exceeds the limit of %d bytes", limit))
}

// Unauthorized is a 401.
func Unauthorized(detail string) *Problem {
	return NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
}

// Validator collects field errors so that a handler reports all of them in
// one response.
type Validator struct {
	errs []FieldError
}

// Check records message against field when ok is false.
func (v *Validator) Check(ok bool, field, message string) {
	if !ok {
		v.errs = append(v.errs, FieldError{Field: field, Message: message})
	}
}

// Add records an error against field.
func (v *Validator) Add(field, message string) {
	v.errs = append(v.errs, FieldError{Field: field, Message: message})
}

// Err returns the 422 problem, or nil when nothing was recorded.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return Invalid(v.errs...)
}

// WriteProblem writes p to w. It is for handlers outside echo, such as the
// proxy's data plane.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	body, err := json.Marshal(p)
	if err != nil {
		http.Error(w, p.Title, p.Status)
		return
	}
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
