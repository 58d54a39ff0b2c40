// Package legacyjson holds the tolerant readers of legacy JSON values that
// the anti-corruption layers share: integers, booleans and times in the
// forms the monolith's events, its HTTP API and a backfill's snapshots give
// them.
package legacyjson

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Int reads an integer given as a JSON number (integral, possibly
// written as 12.0) or a string; null and absence leave it unset.
type Int struct {
	// V is the value, 0 when unset.
	V int
	// Set reports whether the value was there and not null.
	Set bool
}

// UnmarshalJSON reads the integer, refusing a fraction.
func (f *Int) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := strings.Trim(string(b), `"`)
	if n, err := strconv.Atoi(s); err == nil {
		f.V, f.Set = n, true
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != float64(int(x)) {
		return fmt.Errorf("%s is not an integer", b)
	}
	f.V, f.Set = int(x), true
	return nil
}

// Bool reads true/false, 1/0, "t"/"f" and their string forms.
type Bool struct {
	// V is the value, false when unset.
	V bool
	// Set reports whether the value was there and not null.
	Set bool
}

// UnmarshalJSON reads the boolean in any of its forms.
func (f *Bool) UnmarshalJSON(b []byte) error {
	s := strings.ToLower(strings.Trim(string(bytes.TrimSpace(b)), `"`))
	switch s {
	case "null", "":
		return nil
	case "true", "t", "1", "yes":
		f.V, f.Set = true, true
	case "false", "f", "0", "no":
		f.V, f.Set = false, true
	default:
		return fmt.Errorf("%s is not a boolean", b)
	}
	return nil
}

// TimeLayouts are the forms a legacy time arrives in: RFC 3339 from the
// monolith's events, and what SQLite and Postgres drivers print when a
// backfill reads a column as text.
var TimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

// Time reads a time in any of TimeLayouts, or epoch milliseconds.
type Time struct {
	// V is the time in UTC, the zero time when unset.
	V time.Time
}

// UnmarshalJSON reads the time in any of TimeLayouts, or epoch
// milliseconds.
func (f *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] != '"' {
		ms, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("%s is not a time", b)
		}
		f.V = time.UnixMilli(ms).UTC()
		return nil
	}
	s := strings.Trim(string(b), `"`)
	for _, l := range TimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			f.V = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%s is not a time", b)
}
