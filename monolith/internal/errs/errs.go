// Package errs makes errors that match a module's sentinel error with
// errors.Is but read as a sentence of their own, so that the detail of the
// problem document a client gets is just that sentence.
package errs

import "fmt"

type detailed struct {
	msg      string
	sentinel error
}

func (e *detailed) Error() string { return e.msg }
func (e *detailed) Unwrap() error { return e.sentinel }

// New returns an error whose message is the formatted text and which
// matches sentinel.
func New(sentinel error, format string, args ...any) error {
	return &detailed{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}
