package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// MaxDocSize caps a route table document.
const MaxDocSize = 4 << 20

// ParseError is a document that cannot be read as a route table: too
// large, empty, not YAML or JSON, more than one document, or a field the
// table does not have. A table that reads but is not valid is an *Error.
type ParseError struct {
	msg string
	err error
}

func (e *ParseError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *ParseError) Unwrap() error { return e.err }

// Parse reads a route table from YAML or JSON (JSON is YAML), refusing
// unknown fields so that a misspelt setting is an error, not a silent
// default.
func Parse(b []byte) (*Doc, error) {
	if len(b) > MaxDocSize {
		return nil, &ParseError{msg: fmt.Sprintf("route table is %d bytes; the limit is %d", len(b), MaxDocSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var d Doc
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{msg: "route table is empty"}
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, &Error{Problems: te.Errors}
		}
		return nil, &ParseError{msg: "route table is not valid YAML", err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ParseError{msg: "route table holds more than one YAML document"}
	}
	return &d, nil
}

// ParseJSON reads a route table from JSON, refusing unknown fields.
func ParseJSON(b []byte) (*Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Doc
	if err := dec.Decode(&d); err != nil {
		return nil, &ParseError{msg: "route table is not valid JSON", err: err}
	}
	if dec.More() {
		return nil, &ParseError{msg: "route table has data after the JSON document"}
	}
	return &d, nil
}

// YAML renders d as YAML.
func (d *Doc) YAML() ([]byte, error) { return yaml.Marshal(d) }
