package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stranglerkit/strangler/changefeed/internal/sqltext"
)

// Row is one row, by column name.
type Row map[string]any

// Column maps one compared target column to its source.
type Column struct {
	// Target is the column in the target table.
	Target string `yaml:"target"`
	// Source is the column in the source table. If empty, the same name as
	// Target.
	Source string `yaml:"source"`
	// Transform turns the source value into the target's representation:
	// trim, lower, upper, cents (a decimal amount times 100, as an integer),
	// or prefix:<text>. If empty, none.
	Transform string `yaml:"transform"`
	// Type is how both sides' values are compared: text, int, decimal
	// (numerically, so 12.5 equals 12.50), bool (1/0, t/f, true/false),
	// time (instants, whatever the zone or format) or json (documents,
	// whatever the key order and spacing, as Postgres's jsonb renders them
	// differently from the text they were written as). If empty, values are
	// compared in a canonical form of what the drivers return.
	Type string `yaml:"type"`
}

// Mapping says how a source row corresponds to a target row.
type Mapping struct {
	// Columns lists the compared columns. If empty, the target's columns
	// other than its key, by the same names in the source.
	Columns []Column
	// KeyFormat turns a source key into a target key, with %s standing for
	// the source key, such as "SKU-%s". If empty, the keys are equal.
	KeyFormat string
	// Key turns a source key into a target key, for translations that a
	// format cannot express (a lookup table, say). It wins over KeyFormat.
	Key func(sourceKey string) (string, error)
	// Row turns a source row into the target's columns (already
	// transformed), for mappings that Columns cannot express. It wins over
	// Columns' Source and Transform; Columns still name what is compared
	// and how.
	Row func(Row) (Row, error)
}

var transforms = regexp.MustCompile(`^(|trim|lower|upper|cents|prefix:.*)$`)

// Validate reports invalid column entries.
func (c Column) Validate() error {
	var errs []error
	if c.Target == "" {
		errs = append(errs, errors.New("target: must not be empty"))
	}
	if !transforms.MatchString(c.Transform) {
		errs = append(errs, fmt.Errorf("transform: %q: want trim, lower, upper, cents or prefix:<text>", c.Transform))
	}
	switch c.Type {
	case "", "text", "int", "decimal", "bool", "time", "json":
	default:
		errs = append(errs, fmt.Errorf("type: %q: want text, int, decimal, bool, time or json", c.Type))
	}
	return errors.Join(errs...)
}

func (c Column) source() string {
	if c.Source == "" {
		return c.Target
	}
	return c.Source
}

// transform applies the column's transform to a source value.
func (c Column) transform(v any) (any, error) {
	if v == nil || c.Transform == "" {
		return v, nil
	}
	s := sqltext.Text(v)
	switch {
	case c.Transform == "trim":
		return strings.TrimSpace(s), nil
	case c.Transform == "lower":
		return strings.ToLower(s), nil
	case c.Transform == "upper":
		return strings.ToUpper(s), nil
	case c.Transform == "cents":
		r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
		if !ok {
			return nil, fmt.Errorf("cents: %q is not a number", s)
		}
		r.Mul(r, big.NewRat(100, 1))
		if !r.IsInt() {
			return nil, fmt.Errorf("cents: %q has fractions of a cent", s)
		}
		return r.Num().Int64(), nil
	case strings.HasPrefix(c.Transform, "prefix:"):
		return strings.TrimPrefix(c.Transform, "prefix:") + s, nil
	}
	return nil, fmt.Errorf("unknown transform %q", c.Transform)
}

// canonical renders a value for hashing and reports, per the column's type.
func canonical(v any, typ string) (string, error) {
	if v == nil {
		return "\x00null", nil
	}
	switch typ {
	case "text":
		return sqltext.Text(v), nil
	case "int":
		s := strings.TrimSpace(sqltext.Text(v))
		if f, ok := v.(float64); ok && f == math.Trunc(f) {
			return strconv.FormatInt(int64(f), 10), nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", s)
		}
		return strconv.FormatInt(n, 10), nil
	case "decimal":
		s := strings.TrimSpace(sqltext.Text(v))
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return "", fmt.Errorf("%q is not a number", s)
		}
		return r.RatString(), nil
	case "bool":
		switch strings.ToLower(strings.TrimSpace(sqltext.Text(v))) {
		case "1", "t", "true", "y", "yes":
			return "true", nil
		case "0", "f", "false", "n", "no":
			return "false", nil
		}
		return "", fmt.Errorf("%q is not a boolean", sqltext.Text(v))
	case "time":
		t, err := toTime(v)
		if err != nil {
			return "", err
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	case "json":
		return canonicalJSON(sqltext.Text(v))
	}
	switch x := v.(type) {
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case float32:
		return canonical(float64(x), typ)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	return sqltext.Text(v), nil
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func toTime(v any) (time.Time, error) {
	if t, ok := v.(time.Time); ok {
		return t, nil
	}
	s := strings.TrimSpace(sqltext.Text(v))
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", s)
}

// canonicalJSON renders a JSON document compactly with its object keys
// sorted, numbers kept as written.
func canonicalJSON(s string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("%q is not JSON: %w", display(s), err)
	}
	if dec.More() {
		return "", fmt.Errorf("%q is not one JSON document", display(s))
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return string(out), nil
}
